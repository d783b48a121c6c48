use super::*;
use bond_speech::chat::ToolCall;
use bond_store::clock::monotonic;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn drain(c: &mut Conversation) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// The ids of the sentences sent to synthesis, in order.
pub(super) fn synthesized(outputs: &[Output]) -> Vec<(u64, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Synthesize { id, text } => Some((*id, text.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn notes(outputs: &[Output]) -> Vec<Note> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Note(note) => Some(note.clone()),
            _ => None,
        })
        .collect()
}

/// The caller says `text`: speech from `at` for `length`, cut 600 ms later, transcribed 300 ms after that.
pub(super) fn caller_says(c: &mut Conversation, at: Instant, length: Duration, text: &str) -> Instant {
    c.speech_started(Party::CALLER, at + ms(60));
    let cut = at + length + ms(600);
    c.speech_ended(Party::CALLER, cut, at + length, length);
    let transcribed = cut + ms(300);
    c.transcript(Party::CALLER, transcribed, text);
    transcribed
}

/// A conversation whose greeting has played out by the returned time.
pub(super) fn greeted(rules: Rules) -> (Conversation, Instant) {
    let t0 = monotonic();
    let mut c = Conversation::new(rules, "You are a shop's agent.", Some("Hello, how can I help?"));
    let out = drain(&mut c);
    assert_eq!(synthesized(&out), vec![(1, "Hello, how can I help?".to_owned())]);
    c.audio_ready(t0, 1, ms(1500), true);
    assert_eq!(drain(&mut c), vec![Output::Play { id: 1, from: ms(0) }]);
    c.poll(t0 + ms(1500));
    let out = drain(&mut c);
    assert!(matches!(&notes(&out)[..], [Note::AgentTurn { interrupted: false, .. }]), "{out:?}");
    (c, t0 + ms(1500))
}

/// The caller's turn ends at its deadline; the answer is asked for.
pub(super) fn turn_ends(c: &mut Conversation) -> (Instant, Vec<Output>) {
    let at = c.deadline().expect("a turn waiting to end");
    c.poll(at);
    (at, drain(c))
}

/// The model answers `text` at once, each sentence is ready 200 ms later and `per_sentence` long.
fn answer(c: &mut Conversation, at: Instant, text: &str, per_sentence: Duration) -> Vec<u64> {
    c.answer_text(at, text);
    c.answer_done(at);
    let sentences = synthesized(&drain(c));
    for (id, _) in &sentences {
        c.audio_ready(at + ms(200), *id, per_sentence, true);
    }
    drain(c);
    sentences.into_iter().map(|(id, _)| id).collect()
}

#[test]
fn a_greeting_is_spoken_and_kept_in_the_history() {
    let (c, _) = greeted(Rules::default());
    assert_eq!(c.history()[1], Message::new(Role::Assistant, "Hello, how can I help?"));
}

#[test]
fn a_finished_sentence_ends_the_turn_once_transcribed_and_the_answer_streams_by_sentence() {
    let (mut c, t) = greeted(Rules::default());
    let transcribed = caller_says(&mut c, t + ms(500), ms(1500), "I'd like to check my order.");
    let (at, out) = turn_ends(&mut c);
    assert_eq!(at, transcribed, "nothing more to wait for");
    let Some(Output::Ask(messages)) = out.iter().find(|o| matches!(o, Output::Ask(_))) else {
        panic!("{out:?}")
    };
    assert_eq!(
        messages.last().map(|m| (m.role, m.content.as_str())),
        Some((Role::User, "I'd like to check my order."))
    );
    assert!(matches!(&notes(&out)[..], [Note::CallerTurn { end: EndOfTurn::Complete, .. }]));

    c.answer_text(at + ms(400), "Sure. What is ");
    assert_eq!(
        synthesized(&drain(&mut c)),
        vec![(2, "Sure.".to_owned())],
        "the first sentence goes before the rest is written"
    );
    c.audio_ready(at + ms(500), 2, ms(600), true);
    assert_eq!(drain(&mut c), vec![Output::Play { id: 2, from: ms(0) }]);
    c.answer_text(at + ms(600), "your order number?");
    c.answer_done(at + ms(700));
    assert_eq!(synthesized(&drain(&mut c)), vec![(3, "What is your order number?".to_owned())]);
    c.audio_ready(at + ms(900), 3, ms(1200), true);
    drain(&mut c);
    assert_eq!(c.deadline(), Some(at + ms(2300)), "queued behind the first sentence");
    c.poll(at + ms(2300));
    let Some(Note::AgentTurn { heard, interrupted: false, latency, .. }) = notes(&drain(&mut c)).pop() else {
        panic!("the answer ended")
    };
    assert_eq!(heard, "Sure. What is your order number?");
    let speech_end = t + ms(2000);
    assert_eq!(latency.first_token, Some(at + ms(400) - speech_end));
    assert_eq!(latency.playing, Some(at + ms(500) - speech_end));
}

#[test]
fn a_number_read_slowly_with_pauses_is_one_turn() {
    let rules = Rules::default();
    let wait = rules.unfinished_wait;
    let (mut c, t) = greeted(rules);
    let first = caller_says(&mut c, t, ms(1200), "My number is 555,");
    assert_eq!(c.deadline(), Some(first - ms(300) + wait), "mid-number: the longer wait");
    // The caller goes on 1.1 s after the last digit, before the wait is over.
    let second = caller_says(&mut c, t + ms(2300), ms(700), "123.");
    c.poll(second);
    assert!(drain(&mut c).is_empty(), "still waiting");
    caller_says(&mut c, t + ms(4100), ms(900), "4567.");
    let (_, out) = turn_ends(&mut c);
    let Some(Note::CallerTurn { text, end, waited }) = notes(&out).pop() else { panic!("{out:?}") };
    assert_eq!(text, "My number is 555, 123. 4567.");
    assert_eq!(end, EndOfTurn::AfterNumber);
    assert_eq!(waited, wait);
}

#[test]
fn speech_over_the_agent_stops_it_and_only_what_was_heard_is_kept() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "What are your opening hours?");
    let (at, _) = turn_ends(&mut c);
    c.answer_text(at, "We open at nine every weekday morning. ");
    let out = drain(&mut c);
    let (id, _) = synthesized(&out)[0].clone();
    c.audio_ready(at, id, ms(2000), true);
    drain(&mut c);
    // The model is still writing when the caller cuts in, 1 s into the sentence.
    c.speech_started(Party::CALLER, at + ms(1000));
    assert_eq!(drain(&mut c), vec![Output::StopAudio], "stopped at the onset");
    c.speech_ended(Party::CALLER, at + ms(2500), at + ms(1900), ms(900));
    let out = drain(&mut c);
    assert!(out.contains(&Output::CancelAnswer), "{out:?}");
    let Some(Note::AgentTurn { heard, interrupted: true, said, .. }) = notes(&out).pop() else {
        panic!("{out:?}")
    };
    assert_eq!(heard, "We open at nine");
    assert_eq!(said, "We open at nine every weekday morning.");
    assert_eq!(c.history().last().map(|m| m.content.as_str()), Some("We open at nine"));
    c.transcript(Party::CALLER, at + ms(2800), "And on Saturdays?");
    let (_, out) = turn_ends(&mut c);
    assert!(out.iter().any(|o| matches!(o, Output::Ask(_))));
}

#[test]
fn a_cough_or_a_backchannel_lets_the_agent_play_on_from_where_it_stopped() {
    for noise in ["(coughs)", "Mm-hm.", ""] {
        let (mut c, t) = greeted(Rules::default());
        caller_says(&mut c, t, ms(1000), "Tell me about delivery.");
        let (at, _) = turn_ends(&mut c);
        let ids = answer(&mut c, at, "Delivery takes two days. It is free over fifty euros.", ms(2000));
        let playing = at + ms(200);
        c.speech_started(Party::CALLER, playing + ms(800));
        assert_eq!(drain(&mut c), vec![Output::StopAudio]);
        // 250 ms of sound, cut after the 600 ms quiet.
        c.speech_ended(Party::CALLER, playing + ms(1650), playing + ms(1050), ms(250));
        assert_eq!(
            drain(&mut c),
            vec![Output::Play { id: ids[0], from: ms(800) }, Output::Play { id: ids[1], from: ms(0) }],
            "{noise:?}"
        );
        c.transcript(Party::CALLER, playing + ms(1900), noise);
        let out = drain(&mut c);
        assert!(!out.contains(&Output::StopAudio), "{noise:?}: {out:?}");
        // The rest: 1.2 s of the first sentence and all of the second, from the resume.
        c.poll(playing + ms(1650) + ms(3200));
        let Some(Note::AgentTurn { heard, interrupted: false, .. }) = notes(&drain(&mut c)).pop() else {
            panic!("{noise:?}: the answer played out")
        };
        assert_eq!(heard, "Delivery takes two days. It is free over fifty euros.");
        assert_eq!(c.deadline(), None, "{noise:?}: no caller turn");
    }
}

#[test]
fn short_real_words_over_the_agent_take_the_turn_once_transcribed() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "Cancel my order.");
    let (at, _) = turn_ends(&mut c);
    answer(&mut c, at, "Which order would you like to cancel?", ms(2000));
    let playing = at + ms(200);
    c.speech_started(Party::CALLER, playing + ms(400));
    c.speech_ended(Party::CALLER, playing + ms(1300), playing + ms(700), ms(300));
    drain(&mut c);
    c.transcript(Party::CALLER, playing + ms(1500), "No, wait.");
    let out = drain(&mut c);
    assert_eq!(out.first(), Some(&Output::StopAudio), "{out:?}");
    assert!(matches!(notes(&out)[..], [Note::AgentTurn { interrupted: true, .. }]));
    let (_, out) = turn_ends(&mut c);
    let Some(Note::CallerTurn { text, .. }) = notes(&out).pop() else { panic!("{out:?}") };
    assert_eq!(text, "No, wait.");
}

#[test]
fn speech_before_the_answer_plays_means_the_caller_was_not_done() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "I want to");
    c.poll(t + ms(1600) + ms(300) + Rules::default().unfinished_wait);
    let out = drain(&mut c);
    assert!(out.iter().any(|o| matches!(o, Output::Ask(_))), "the wait ran out: {out:?}");
    caller_says(&mut c, t + ms(3500), ms(1000), "change my address.");
    let out = drain(&mut c);
    assert!(out.contains(&Output::CancelAnswer), "{out:?}");
    let (_, out) = turn_ends(&mut c);
    let Some(Output::Ask(messages)) = out.iter().find(|o| matches!(o, Output::Ask(_))) else {
        panic!("{out:?}")
    };
    assert_eq!(messages.last().map(|m| m.content.as_str()), Some("I want to change my address."));
    assert_eq!(messages.iter().filter(|m| m.role == Role::User).count(), 1, "one turn, not two");
}

#[test]
fn a_failed_answer_is_replaced_by_the_apology() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "Hello?");
    let (at, _) = turn_ends(&mut c);
    c.answer_failed(at + ms(800), "primary: 503 Service Unavailable");
    let out = drain(&mut c);
    assert_eq!(synthesized(&out)[0].1, Rules::default().apology);
    assert!(matches!(&notes(&out)[..], [Note::AnswerFailed { .. }]));
}

#[test]
fn with_interruptions_off_the_agent_finishes_and_then_answers_what_was_said() {
    let rules = Rules { interruptions: false, ..Rules::default() };
    let (mut c, t) = greeted(rules);
    caller_says(&mut c, t, ms(1000), "Where is my parcel?");
    let (at, _) = turn_ends(&mut c);
    answer(&mut c, at, "It left our warehouse this morning.", ms(2000));
    caller_says(&mut c, at + ms(500), ms(800), "Thanks, and when will it arrive?");
    assert!(!drain(&mut c).contains(&Output::StopAudio));
    c.poll(at + ms(2200));
    let out = drain(&mut c);
    assert!(matches!(notes(&out)[..], [Note::AgentTurn { interrupted: false, .. }]), "{out:?}");
    let (_, out) = turn_ends(&mut c);
    assert!(out.iter().any(|o| matches!(o, Output::Ask(_))), "{out:?}");
}

#[test]
fn abbreviations_do_not_cut_a_sentence() {
    assert_eq!(sentence_end("Dr. Smith will call. Bye"), Some(20));
    assert_eq!(sentence_end("See e.g. the list"), None);
    assert_eq!(sentence_end("Done! Next"), Some(5));
}

#[test]
fn a_slow_model_is_covered_by_the_filler_which_stays_out_of_the_history() {
    let rules = Rules::default();
    let limit = rules.silence_limit;
    let (mut c, t) = greeted(rules);
    caller_says(&mut c, t, ms(1000), "What is my balance?");
    let (at, _) = turn_ends(&mut c);
    assert_eq!(c.deadline(), Some(at + limit), "the filler is due");
    c.poll(at + limit);
    let out = drain(&mut c);
    let [(filler, text)] = &synthesized(&out)[..] else { panic!("{out:?}") };
    assert_eq!(text, &Rules::default().filler);
    c.audio_ready(at + limit + ms(100), *filler, ms(900), true);
    drain(&mut c);
    c.answer_text(at + ms(4000), "Your balance is twelve euros.");
    c.answer_done(at + ms(4000));
    let (id, _) = synthesized(&drain(&mut c))[0].clone();
    c.audio_ready(at + ms(4100), id, ms(1500), true);
    assert_eq!(drain(&mut c), vec![Output::Play { id, from: ms(0) }]);
    c.poll(at + ms(5600));
    let Some(Note::AgentTurn { said, heard, latency, .. }) = notes(&drain(&mut c)).pop() else {
        panic!("played out")
    };
    let speech_end = t + ms(1000);
    assert_eq!(latency.first_audio, Some(at + ms(4100) - speech_end), "the filler is not the answer");
    assert_eq!(
        (said.as_str(), heard.as_str()),
        ("Your balance is twelve euros.", "Your balance is twelve euros.")
    );
    assert_eq!(c.history().last().map(|m| m.content.as_str()), Some("Your balance is twelve euros."));
}

#[test]
fn a_model_that_fails_after_the_filler_still_apologises() {
    let rules = Rules::default();
    let limit = rules.silence_limit;
    let (mut c, t) = greeted(rules);
    caller_says(&mut c, t, ms(1000), "Are you there?");
    let (at, _) = turn_ends(&mut c);
    c.poll(at + limit);
    drain(&mut c);
    c.answer_failed(at + ms(5000), "primary: no answer within 4000 ms");
    let spoken: Vec<String> = synthesized(&drain(&mut c)).into_iter().map(|(_, text)| text).collect();
    assert_eq!(spoken, vec![Rules::default().apology]);
}

#[test]
fn closing_words_follow_the_answer_and_then_the_conversation_is_idle() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "It is order 4567.");
    let (at, _) = turn_ends(&mut c);
    c.answer_text(at, "Got it.");
    c.say("Thank you, goodbye.");
    c.answer_done(at + ms(100));
    let spoken = synthesized(&drain(&mut c));
    assert_eq!(
        spoken.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["Got it.", "Thank you, goodbye."]
    );
    for (id, _) in &spoken {
        c.audio_ready(at + ms(200), *id, ms(1000), true);
    }
    assert!(!c.is_idle());
    c.poll(at + ms(2200));
    assert!(c.is_idle());
    // With nothing under way, the words are an answer of their own.
    c.say("Bye.");
    assert_eq!(synthesized(&drain(&mut c)).last().map(|(_, t)| t.clone()), Some("Bye.".into()));
}

fn tool_call(id: &str, name: &str) -> ToolCall {
    ToolCall { id: id.into(), name: name.into(), arguments: r#"{"order":"4567"}"#.into() }
}

#[test]
fn an_answer_that_calls_a_tool_speaks_first_then_goes_on_with_the_result() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t + ms(500), ms(1500), "Where is my order?");
    let (at, _) = turn_ends(&mut c);
    c.answer_text(at + ms(300), "Let me check.");
    let lookup = tool_call("call_1", "order_status");
    c.answer_tools(at + ms(400), vec![lookup.clone()]);
    let out = drain(&mut c);
    assert_eq!(
        synthesized(&out),
        vec![(2, "Let me check.".to_owned())],
        "what it said before the call is spoken"
    );
    assert!(out.contains(&Output::CallTools(vec![lookup.clone()])), "{out:?}");
    c.audio_ready(at + ms(500), 2, ms(800), true);
    drain(&mut c);
    c.poll(at + ms(1300));
    assert!(notes(&drain(&mut c)).is_empty(), "the answer waits for the tool, though its words have played");

    c.tool_results(vec![r#"{"status":"shipped"}"#.into()]);
    let Some(Output::Ask(asked)) = drain(&mut c).pop() else { panic!("the model is asked to go on") };
    let n = asked.len();
    assert_eq!(
        asked[n - 2],
        Message { tool_calls: vec![lookup.clone()], ..Message::new(Role::Assistant, "Let me check.") }
    );
    assert_eq!(asked[n - 1], Message::tool_result(&lookup, r#"{"status":"shipped"}"#));

    c.answer_text(at + ms(1600), "It has shipped.");
    c.answer_done(at + ms(1600));
    let ids = synthesized(&drain(&mut c));
    c.audio_ready(at + ms(1700), ids[0].0, ms(700), true);
    drain(&mut c);
    c.poll(at + ms(2400));
    let Some(Note::AgentTurn { said, heard, .. }) = notes(&drain(&mut c)).pop() else {
        panic!("the turn ended")
    };
    assert_eq!(
        (said.as_str(), heard.as_str()),
        ("Let me check. It has shipped.", "Let me check. It has shipped.")
    );
    let history = c.history();
    assert_eq!(history.last(), Some(&Message::new(Role::Assistant, "It has shipped.")), "not said twice");
    let wire = super::super::message::history(history);
    assert_eq!(wire[n - 2]["tool_calls"][0]["function"]["name"], "order_status");
    assert_eq!(wire[n - 1]["tool_call_id"], "call_1");
}

#[test]
fn a_caller_who_cuts_in_while_a_tool_runs_drops_its_result() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t + ms(500), ms(1500), "Where is my order?");
    let (at, _) = turn_ends(&mut c);
    c.answer_text(at + ms(300), "Let me check.");
    c.answer_tools(at + ms(300), vec![tool_call("call_1", "order_status")]);
    drain(&mut c);
    c.audio_ready(at + ms(400), 2, ms(3000), true);
    drain(&mut c);
    // Real words, long enough to take the turn, while the words play and the tool runs.
    let cut_in = caller_says(&mut c, at + ms(1000), ms(1200), "Actually, never mind.");
    let out = drain(&mut c);
    assert!(out.contains(&Output::CancelAnswer) && out.contains(&Output::StopAudio), "{out:?}");
    c.tool_results(vec!["late".into()]);
    assert!(!drain(&mut c).iter().any(|o| matches!(o, Output::Ask(_))), "a dropped answer asks nothing");
    assert!(c.history().iter().all(|m| m.role != Role::Tool));
    c.poll(cut_in);
    assert!(matches!(drain(&mut c).last(), Some(Output::Ask(_))), "the caller's new turn is answered");
}

#[test]
fn a_model_that_keeps_calling_tools_is_stopped_after_five_rounds() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t + ms(500), ms(1500), "Where is my order?");
    let (at, _) = turn_ends(&mut c);
    for round in 0..5 {
        c.answer_tools(at, vec![tool_call(&format!("call_{round}"), "order_status")]);
        assert!(drain(&mut c).iter().any(|o| matches!(o, Output::CallTools(_))), "round {round}");
        c.tool_results(vec!["{}".into()]);
        assert!(matches!(drain(&mut c).pop(), Some(Output::Ask(_))));
    }
    c.answer_text(at, "I could not find it.");
    c.answer_tools(at, vec![tool_call("call_5", "order_status")]);
    let out = drain(&mut c);
    assert!(!out.iter().any(|o| matches!(o, Output::CallTools(_))), "a sixth round is not run: {out:?}");
    assert_eq!(synthesized(&out).len(), 1, "what it said is spoken as the answer");
}

/// The messages an `Ask` or `Prepare` among `outputs` carries.
fn asked(outputs: &[Output], prepare: bool) -> Option<Vec<Message>> {
    outputs.iter().find_map(|o| match o {
        Output::Ask(m) if !prepare => Some(m.clone()),
        Output::Prepare(m) if prepare => Some(m.clone()),
        _ => None,
    })
}

#[test]
fn an_early_transcript_that_reads_finished_asks_the_turns_answer_ahead() {
    let (mut c, t0) = greeted(Rules::default());
    c.speech_started(Party::CALLER, t0 + ms(60));
    c.early_transcript(Party::CALLER, t0 + ms(2000), " I would like to check my order.");
    let prepared = asked(&drain(&mut c), true).expect("asked ahead");
    assert_eq!(prepared.last(), Some(&Message::new(Role::User, "I would like to check my order.")));
    // The quiet lasts: the utterance is cut and its transcript is the early one.
    c.speech_ended(Party::CALLER, t0 + ms(2600), t0 + ms(2000), ms(1940));
    c.transcript(Party::CALLER, t0 + ms(2600), " I would like to check my order.");
    let (_, out) = turn_ends(&mut c);
    assert_eq!(asked(&out, false), Some(prepared), "the Ask is what was prepared: the runtime takes it");
    assert!(!out.contains(&Output::DropPrepared));
}

#[test]
fn speech_after_an_early_answer_drops_it_and_the_turn_asks_anew() {
    let (mut c, t0) = greeted(Rules::default());
    c.speech_started(Party::CALLER, t0 + ms(60));
    c.early_transcript(Party::CALLER, t0 + ms(700), "I would like to check.");
    assert!(asked(&drain(&mut c), true).is_some());
    c.speech_started(Party::CALLER, t0 + ms(900));
    assert_eq!(drain(&mut c), vec![Output::DropPrepared]);
    // The look of the pause before: it comes after the caller went on, and asks nothing.
    c.early_transcript(Party::CALLER, t0 + ms(800), "I would like to check. My order.");
    assert!(drain(&mut c).is_empty(), "a look older than the speech since is stale");
    caller_says(&mut c, t0 + ms(900), ms(1000), "I would like to check. My order, please.");
    let (_, out) = turn_ends(&mut c);
    let ask = asked(&out, false).expect("the turn asks");
    assert_eq!(ask.last().map(|m| m.content.as_str()), Some("I would like to check. My order, please."));
}

#[test]
fn early_transcripts_that_read_unfinished_or_come_mid_answer_ask_nothing_ahead() {
    let (mut c, t0) = greeted(Rules::default());
    c.speech_started(Party::CALLER, t0 + ms(60));
    c.early_transcript(Party::CALLER, t0 + ms(400), "My order number is four five");
    c.early_transcript(Party::CALLER, t0 + ms(400), "I would like to check and");
    c.early_transcript(Party::CALLER, t0 + ms(400), " (coughs) ");
    assert!(drain(&mut c).is_empty(), "a number or a clause still going waits; no words ask nothing");
    // An utterance still waiting for its transcript: the early words would not be the whole turn.
    c.speech_ended(Party::CALLER, t0 + ms(1000), t0 + ms(400), ms(340));
    c.speech_started(Party::CALLER, t0 + ms(1100));
    c.early_transcript(Party::CALLER, t0 + ms(1400), "Yes.");
    assert!(drain(&mut c).is_empty());
    c.transcript(Party::CALLER, t0 + ms(1200), "Hello.");
    c.speech_ended(Party::CALLER, t0 + ms(2000), t0 + ms(1400), ms(300));
    c.transcript(Party::CALLER, t0 + ms(2100), "Yes.");
    let (at, _) = turn_ends(&mut c);
    answer(&mut c, at, "Your order comes tomorrow. Anything else?", ms(2000));
    // The agent is speaking: an early transcript now is speech over it, not a new turn.
    c.speech_started(Party::CALLER, at + ms(700));
    c.early_transcript(Party::CALLER, at + ms(900), "Thanks.");
    assert!(asked(&drain(&mut c), true).is_none());
}

#[test]
fn an_early_answer_joins_the_words_already_heard_this_turn() {
    let (mut c, t0) = greeted(Rules::default());
    caller_says(&mut c, t0, ms(800), "My order number is 4567,");
    c.speech_started(Party::CALLER, t0 + ms(1800));
    c.early_transcript(Party::CALLER, t0 + ms(2600), "and it has not come.");
    let prepared = asked(&drain(&mut c), true).expect("asked ahead");
    let words = "My order number is 4567, and it has not come.";
    assert_eq!(prepared.last().map(|m| m.content.as_str()), Some(words));
}

fn checking(after: u64) -> Rules {
    Rules { user_response_timeout: Some(ms(after)), ..Rules::default() }
}

#[test]
fn a_caller_silent_after_the_answer_is_checked_on_at_most_twice_in_a_row() {
    let (mut c, t0) = greeted(checking(3000));
    assert_eq!(c.deadline(), Some(t0 + ms(3000)), "the greeting is an answer too");
    let mut at = t0;
    for check in 1..=2 {
        at += ms(3000);
        c.poll(at);
        let out = drain(&mut c);
        assert!(notes(&out).contains(&Note::CallerSilent { waited: ms(3000) }), "{out:?}");
        let asked = asked(&out, false).expect("the model is asked to check");
        let instruction = asked.last().expect("an instruction");
        assert_eq!(instruction.role, Role::System);
        assert!(instruction.content.contains("still there"), "{instruction:?}");
        let kept = c.history().iter().any(|m| m.role == Role::System && m.content.contains("still there"));
        assert!(!kept, "the instruction is not kept in the history");
        let ids = answer(&mut c, at, "Are you still there?", ms(1000));
        assert_eq!(ids.len(), 1, "check {check}");
        at += ms(1200);
        c.poll(at);
        drain(&mut c);
    }
    assert_eq!(c.deadline(), None, "after two checks the agent waits");
    // The caller speaks (a cough is enough): the count starts again after the next answer.
    caller_says(&mut c, at, ms(300), "(coughs)");
    drain(&mut c);
    assert_eq!(c.deadline(), None, "no answer ended since: nothing to check");
}

#[test]
fn without_a_response_timeout_or_with_the_caller_talking_nobody_is_checked_on() {
    let (c, _) = greeted(Rules::default());
    assert_eq!(c.deadline(), None);
    let (mut c, t0) = greeted(checking(3000));
    let transcribed = caller_says(&mut c, t0 + ms(1000), ms(1500), "Where is my order?");
    let (at, out) = turn_ends(&mut c);
    assert!(at >= transcribed && asked(&out, false).is_some());
    assert!(!notes(&out).iter().any(|n| matches!(n, Note::CallerSilent { .. })));
}

#[test]
fn a_check_the_caller_talks_over_before_it_plays_is_withdrawn() {
    let (mut c, t0) = greeted(checking(2000));
    c.poll(t0 + ms(2000));
    assert!(asked(&drain(&mut c), false).is_some());
    c.speech_started(Party::CALLER, t0 + ms(2100));
    assert_eq!(drain(&mut c), vec![Output::CancelAnswer]);
    assert!(c.is_idle());
}

#[test]
fn a_turn_no_recognizer_could_transcribe_gets_a_not_heard_line_not_silence() {
    let (mut c, t0) = greeted(Rules::default());
    c.speech_started(Party::CALLER, t0 + ms(60));
    c.speech_ended(Party::CALLER, t0 + ms(1600), t0 + ms(1000), ms(940));
    c.transcript_failed(Party::CALLER, t0 + ms(1700));
    let out = drain(&mut c);
    let said = synthesized(&out);
    let text: Vec<&str> = said.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(text.join(" "), Rules::default().not_heard, "{out:?}");
    assert!(asked(&out, false).is_none(), "the model is not asked about nothing");
    for (id, _) in &said {
        c.audio_ready(t0 + ms(1750), *id, ms(1000), true);
    }
    drain(&mut c);
    c.poll(t0 + ms(3800));
    let notes = notes(&drain(&mut c));
    assert!(matches!(&notes[..], [Note::AgentTurn { interrupted: false, .. }]), "{notes:?}");
    assert_eq!(c.history().last(), Some(&Message::new(Role::Assistant, Rules::default().not_heard)));
}

#[test]
fn a_lost_utterance_after_heard_words_or_over_the_agent_says_nothing_more() {
    // Words were heard before it: the turn ends on them.
    let (mut c, t0) = greeted(Rules::default());
    caller_says(&mut c, t0, ms(800), "I would like to check my order.");
    c.speech_started(Party::CALLER, t0 + ms(1500));
    c.speech_ended(Party::CALLER, t0 + ms(2300), t0 + ms(1700), ms(200));
    c.transcript_failed(Party::CALLER, t0 + ms(2400));
    let (_, out) = turn_ends(&mut c);
    let ask = asked(&out, false).expect("the turn is answered");
    assert_eq!(ask.last().map(|m| m.content.as_str()), Some("I would like to check my order."));
    // With no not-heard line configured, a lost turn leaves things as they were.
    let quiet = Rules { not_heard: String::new(), ..Rules::default() };
    let (mut c, t0) = greeted(quiet);
    c.speech_started(Party::CALLER, t0 + ms(60));
    c.speech_ended(Party::CALLER, t0 + ms(1600), t0 + ms(1000), ms(940));
    c.transcript_failed(Party::CALLER, t0 + ms(1700));
    assert!(drain(&mut c).is_empty() && c.is_idle());
}
