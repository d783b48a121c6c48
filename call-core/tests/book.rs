//! The call book's rules, driven with simulated time: no database, no engine,
//! no clock.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bond_call_core::{CallBook, CallId, Ending, Output, Refusal};

/// Where simulated time starts: any instant will do, the book never reads the clock.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn id(name: &str) -> CallId {
    CallId::from(name)
}

/// A book holding `names`, each answered and up.
fn book_with(names: &[&str]) -> CallBook {
    let mut book = CallBook::default();
    for name in names {
        book.created(&id(name));
        book.leg_up(&id(name));
        book.answered(&id(name));
    }
    book
}

fn outputs(book: &mut CallBook) -> Vec<Output> {
    std::iter::from_fn(|| book.poll_output()).collect()
}

/// The calls ended by the outputs, with how, in any order.
fn ended(book: &mut CallBook) -> BTreeSet<(String, &'static str, &'static str)> {
    outputs(book)
        .into_iter()
        .map(|o| match o {
            Output::End { call, ending, .. } => (call.to_string(), ending.cause, ending.source),
            other => panic!("expected only ends, got {other:?}"),
        })
        .collect()
}

fn set(items: &[(&str, &'static str, &'static str)]) -> BTreeSet<(String, &'static str, &'static str)> {
    items.iter().map(|(c, cause, source)| (c.to_string(), *cause, *source)).collect()
}

#[test]
fn hanging_up_a_bridged_call_ends_its_partner_and_says_they_were_bridged() {
    let mut book = book_with(&["a", "b"]);
    book.bridged(&id("a"), &id("b"), false);
    book.end(&id("a"), Ending::HUNG_UP);
    assert_eq!(
        outputs(&mut book),
        vec![
            Output::End { call: id("a"), ending: Ending::HUNG_UP, partner: Some(id("b")) },
            Output::End { call: id("b"), ending: Ending::WITH_ITS_PARTNER, partner: None },
        ]
    );
    assert!(book.is_empty());
}

#[test]
fn a_call_bridged_with_park_after_unbridge_stays_up_once_when_its_partner_goes() {
    let mut book = book_with(&["a", "b", "c"]);
    book.bridged(&id("a"), &id("b"), true);
    book.end(&id("b"), Ending::HUNG_UP);
    assert_eq!(ended(&mut book), set(&[("b", "normal_clearing", "caller")]));
    assert_eq!(book.partner(&id("a")), None);
    // Parking lasts one unbridge: bridged again without it, it goes with its partner.
    book.bridged(&id("a"), &id("c"), false);
    book.end(&id("c"), Ending::HUNG_UP);
    assert_eq!(
        ended(&mut book),
        set(&[("c", "normal_clearing", "caller"), ("a", "normal_clearing", "unknown")])
    );
}

#[test]
fn ending_the_call_a_dial_waits_for_cancels_the_dial() {
    let mut book = book_with(&["customer"]);
    book.created(&id("dial"));
    book.bridge_on_answer(&id("dial"), &id("customer"), false);
    assert_eq!(book.waiting_link(&id("dial")), Some(&id("customer")));
    book.end(&id("customer"), Ending::HUNG_UP);
    assert_eq!(
        ended(&mut book),
        set(&[("customer", "normal_clearing", "caller"), ("dial", "originator_cancel", "caller")])
    );
}

#[test]
fn a_dial_ending_unanswered_ends_the_agent_leg_placed_only_for_it() {
    let mut book = book_with(&["agent-leg", "other-leg"]);
    book.created(&id("dial"));
    book.bridge_on_answer(&id("dial"), &id("agent-leg"), true);
    book.created(&id("dial-2"));
    book.bridge_on_answer(&id("dial-2"), &id("other-leg"), false);
    let busy = Ending { cause: "user_busy", source: "callee" };
    book.end(&id("dial"), busy);
    assert_eq!(
        ended(&mut book),
        set(&[("dial", "user_busy", "callee"), ("agent-leg", "user_busy", "callee")])
    );
    book.end(&id("dial-2"), busy);
    assert_eq!(ended(&mut book), set(&[("dial-2", "user_busy", "callee")]), "that leg was not placed for it");
    assert!(book.waiting_link(&id("dial-2")).is_none());
}

#[test]
fn a_dial_is_bridged_on_answer_only_once_it_and_its_link_are_up() {
    let mut book = CallBook::default();
    book.created(&id("customer"));
    book.created(&id("dial"));
    book.bridge_on_answer(&id("dial"), &id("customer"), false);
    book.answered(&id("dial"));
    assert_eq!(outputs(&mut book), vec![], "neither has a leg yet");
    book.leg_up(&id("dial"));
    assert_eq!(outputs(&mut book), vec![], "the linked call has no leg yet");
    book.leg_up(&id("customer"));
    assert_eq!(outputs(&mut book), vec![Output::Bridge { call: id("dial"), with: id("customer") }]);
    book.answered(&id("dial"));
    book.leg_up(&id("customer"));
    assert_eq!(outputs(&mut book), vec![], "once only");
    assert!(book.waiting_link(&id("dial")).is_none());
}

#[test]
fn an_unanswered_dial_with_its_leg_up_waits_for_the_answer() {
    let mut book = book_with(&["customer"]);
    book.created(&id("dial"));
    book.leg_up(&id("dial"));
    book.bridge_on_answer(&id("dial"), &id("customer"), false);
    assert_eq!(outputs(&mut book), vec![]);
    book.answered(&id("dial"));
    assert_eq!(outputs(&mut book), vec![Output::Bridge { call: id("dial"), with: id("customer") }]);
}

#[test]
fn supervisors_end_with_the_call_they_supervise() {
    let mut book = book_with(&["customer", "agent", "boss", "boss-2"]);
    book.bridged(&id("customer"), &id("agent"), false);
    book.supervise(&id("boss"), &id("customer"));
    book.supervise(&id("boss-2"), &id("agent"));
    book.end(&id("customer"), Ending::HUNG_UP);
    assert_eq!(
        ended(&mut book),
        set(&[
            ("customer", "normal_clearing", "caller"),
            ("agent", "normal_clearing", "unknown"),
            ("boss", "normal_clearing", "unknown"),
            ("boss-2", "normal_clearing", "unknown"),
        ])
    );
}

#[test]
fn a_cascade_that_reaches_a_call_twice_ends_it_once() {
    let mut book = book_with(&["a", "b"]);
    book.bridged(&id("a"), &id("b"), false);
    // b is a's partner and also supervises it.
    book.supervise(&id("b"), &id("a"));
    book.end(&id("a"), Ending::HUNG_UP);
    assert_eq!(
        ended(&mut book),
        set(&[("a", "normal_clearing", "caller"), ("b", "normal_clearing", "unknown")])
    );
}

#[test]
fn a_call_not_in_the_book_still_gets_its_end_and_nothing_cascades() {
    let mut book = book_with(&["a"]);
    book.end(&id("orphan"), Ending::HUNG_UP);
    assert_eq!(ended(&mut book), set(&[("orphan", "normal_clearing", "caller")]));
    assert_eq!(book.len(), 1);
}

#[test]
fn the_time_limit_ends_a_call_at_its_deadline_and_not_before() {
    let start = t0();
    let mut book = book_with(&["a", "b"]);
    book.bridged(&id("a"), &id("b"), false);
    book.limit_time(&id("a"), Duration::from_secs(30), start);
    assert_eq!(book.poll_timeout(), Some(start + Duration::from_secs(30)));
    book.handle_timeout(start + Duration::from_millis(29_999));
    assert_eq!(outputs(&mut book), vec![]);
    book.handle_timeout(start + Duration::from_secs(30));
    assert_eq!(ended(&mut book), set(&[("a", "time_limit", "unknown"), ("b", "normal_clearing", "unknown")]));
    assert_eq!(book.poll_timeout(), None);
}

#[test]
fn a_call_that_ends_first_leaves_no_time_limit_behind() {
    let start = t0();
    let mut book = book_with(&["a", "b"]);
    book.limit_time(&id("a"), Duration::from_secs(10), start);
    book.limit_time(&id("b"), Duration::from_secs(20), start);
    book.end(&id("a"), Ending::HUNG_UP);
    outputs(&mut book);
    assert_eq!(book.poll_timeout(), Some(start + Duration::from_secs(20)));
    book.handle_timeout(start + Duration::from_secs(60));
    assert_eq!(ended(&mut book), set(&[("b", "time_limit", "unknown")]));
}

#[test]
fn a_new_time_limit_replaces_the_old_one() {
    let start = t0();
    let mut book = book_with(&["a"]);
    book.limit_time(&id("a"), Duration::from_secs(10), start);
    book.limit_time(&id("a"), Duration::from_secs(40), start);
    book.handle_timeout(start + Duration::from_secs(39));
    assert_eq!(outputs(&mut book), vec![]);
    assert_eq!(book.poll_timeout(), Some(start + Duration::from_secs(40)));
}

#[test]
fn a_bridge_is_refused_for_one_call_an_ended_call_or_a_bridged_one_when_asked() {
    let mut book = book_with(&["a", "b", "c"]);
    assert_eq!(book.plan_bridge(&id("a"), &id("a"), false), Err(Refusal::SameCall));
    assert_eq!(book.plan_bridge(&id("a"), &id("gone"), false), Err(Refusal::Ended(id("gone"))));
    book.bridged(&id("a"), &id("b"), false);
    assert_eq!(book.plan_bridge(&id("c"), &id("b"), true), Err(Refusal::AlreadyBridged(id("b"))));
    assert_eq!(book.plan_bridge(&id("c"), &id("b"), false), Ok(vec![id("b")]));
}

#[test]
fn rebridging_a_pair_unbridges_it_once() {
    let mut book = book_with(&["a", "b"]);
    book.bridged(&id("a"), &id("b"), false);
    assert_eq!(book.plan_bridge(&id("a"), &id("b"), false), Ok(vec![id("a")]));
    assert_eq!(book.plan_bridge(&id("b"), &id("a"), false), Ok(vec![id("b")]));
}

#[test]
fn bridging_with_a_new_partner_leaves_the_old_one_unbridged_and_up() {
    let mut book = book_with(&["a", "b", "c"]);
    book.bridged(&id("a"), &id("b"), false);
    book.bridged(&id("a"), &id("c"), false);
    assert_eq!(book.partner(&id("b")), None);
    assert_eq!(book.partner(&id("c")), Some(&id("a")));
    book.end(&id("a"), Ending::HUNG_UP);
    assert_eq!(
        ended(&mut book),
        set(&[("a", "normal_clearing", "caller"), ("c", "normal_clearing", "unknown")])
    );
    assert_eq!(book.len(), 1, "b is still up");
}

#[test]
fn a_forgotten_call_leaves_nothing_and_says_nothing() {
    let start = t0();
    let mut book = book_with(&["a"]);
    book.limit_time(&id("a"), Duration::from_secs(5), start);
    book.forget(&id("a"));
    assert!(book.is_empty());
    assert_eq!(book.poll_timeout(), None);
    assert_eq!(outputs(&mut book), vec![]);
}

#[test]
fn a_call_bridged_with_a_call_of_another_book_ends_when_that_partner_ends() {
    // "remote" lives in another node's book: only "a" is here.
    let mut book = book_with(&["a"]);
    book.bridged(&id("a"), &id("remote"), false);
    assert_eq!(book.partner(&id("a")), Some(&id("remote")));
    book.remote_partner_left(&id("a"), &id("remote"), true);
    assert_eq!(
        outputs(&mut book),
        vec![Output::End { call: id("a"), ending: Ending::WITH_ITS_PARTNER, partner: None }]
    );
}

#[test]
fn a_remote_partner_bridged_elsewhere_or_ending_a_parked_call_leaves_it_up_unbridged() {
    let mut book = book_with(&["a", "parked"]);
    book.bridged(&id("a"), &id("remote"), false);
    book.remote_partner_left(&id("a"), &id("remote"), false);
    book.bridged(&id("parked"), &id("other"), true);
    book.remote_partner_left(&id("parked"), &id("other"), true);
    assert!(outputs(&mut book).is_empty());
    assert_eq!(book.partner(&id("a")), None);
    assert_eq!(book.partner(&id("parked")), None);
    // The park was used up: the next partner ending ends it.
    book.bridged(&id("parked"), &id("third"), false);
    book.remote_partner_left(&id("parked"), &id("third"), true);
    assert_eq!(ended(&mut book), set(&[("parked", "normal_clearing", "unknown")]));
}

#[test]
fn a_stale_notice_about_a_former_remote_partner_changes_nothing() {
    let mut book = book_with(&["a", "b"]);
    book.bridged(&id("a"), &id("remote"), false);
    book.bridged(&id("a"), &id("b"), false);
    book.remote_partner_left(&id("a"), &id("remote"), true);
    book.remote_partner_left(&id("gone"), &id("remote"), true);
    assert!(outputs(&mut book).is_empty());
    assert_eq!(book.partner(&id("a")), Some(&id("b")));
}
