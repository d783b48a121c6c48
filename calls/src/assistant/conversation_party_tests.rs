//! The conversation machine with a call leg joined (`ai_assistant_join`).

use super::tests::{caller_says, drain, greeted, ms, synthesized, turn_ends};
use super::*;
use bond_speech::chat::ToolCall;

const DANA: Party = Party(1);

fn asked(outputs: &[Output]) -> Vec<Message> {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::Ask(messages) => Some(messages.clone()),
            _ => None,
        })
        .expect("an Ask")
}

/// The caller asked for a specialist and, from the instant returned, the
/// agent says `answer` for 1.5 s.
fn answering(answer: &str) -> (Conversation, Instant) {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "Can I talk to a specialist?");
    let (at, _) = turn_ends(&mut c);
    c.answer_text(at, answer);
    c.answer_done(at);
    let (id, _) = synthesized(&drain(&mut c))[0].clone();
    c.audio_ready(at, id, ms(1500), true);
    drain(&mut c);
    (c, at)
}

#[test]
fn the_model_is_told_who_joined_and_each_line_names_its_speaker() {
    let (mut c, t) = greeted(Rules::default());
    c.joined(DANA, "Dana");
    assert_eq!(c.history().last().map(|m| m.role), Some(Role::System));
    assert!(c.history().last().unwrap().content.starts_with("Dana joined the call."));
    let said = caller_says(&mut c, t, ms(1000), "Dana, can you hear me?");
    c.speech_started(DANA, said + ms(100));
    c.speech_ended(DANA, said + ms(1700), said + ms(1100), ms(1000));
    c.transcript(DANA, said + ms(2000), "Yes, I am here.");
    let (_, out) = turn_ends(&mut c);
    let last = asked(&out).pop().unwrap();
    assert_eq!(last, Message::new(Role::User, "Caller: Dana, can you hear me? Dana: Yes, I am here."));
}

#[test]
fn the_turn_waits_while_any_party_speaks_or_awaits_a_transcript() {
    let (mut c, t) = greeted(Rules::default());
    c.joined(DANA, "Dana");
    // Dana starts while the caller is still speaking, and finishes after.
    c.speech_started(Party::CALLER, t);
    c.speech_started(DANA, t + ms(500));
    c.speech_ended(Party::CALLER, t + ms(1600), t + ms(1000), ms(1000));
    c.transcript(Party::CALLER, t + ms(1900), "I would like to move my delivery.");
    assert_eq!(c.deadline(), None, "Dana is still speaking");
    c.speech_ended(DANA, t + ms(2600), t + ms(2000), ms(1500));
    assert_eq!(c.deadline(), None, "Dana's words are still being transcribed");
    c.transcript(DANA, t + ms(2900), "To Friday, please.");
    let (_, out) = turn_ends(&mut c);
    let last = asked(&out).pop().unwrap();
    assert_eq!(last.content, "Caller: I would like to move my delivery. Dana: To Friday, please.");
}

#[test]
fn a_joined_party_interrupts_the_agent_as_the_caller_does() {
    let (mut c, t) = greeted(Rules::default());
    c.joined(DANA, "Dana");
    caller_says(&mut c, t, ms(1000), "What are your opening hours?");
    let (at, _) = turn_ends(&mut c);
    c.answer_text(at, "We open at nine every weekday morning. ");
    c.answer_done(at);
    let (id, _) = synthesized(&drain(&mut c))[0].clone();
    c.audio_ready(at, id, ms(2000), true);
    drain(&mut c);
    c.speech_started(DANA, at + ms(1000));
    assert_eq!(drain(&mut c), vec![Output::StopAudio]);
}

#[test]
fn a_party_that_leaves_mid_utterance_is_not_waited_for() {
    let (mut c, t) = greeted(Rules::default());
    c.joined(DANA, "Dana");
    caller_says(&mut c, t, ms(1000), "Thanks Dana.");
    c.speech_started(DANA, t + ms(1700));
    c.speech_ended(DANA, t + ms(2600), t + ms(2000), ms(300));
    assert_eq!(c.deadline(), None, "Dana's transcript is pending");
    // Her leaving ends the turn at once: it was only waiting for her.
    c.left(t + ms(2700), DANA);
    let mut messages = asked(&drain(&mut c));
    assert_eq!(messages.pop().unwrap().content, "Caller: Thanks Dana.");
    assert_eq!(messages.pop().unwrap(), Message::new(Role::System, "Dana left the call."));
}

#[test]
fn a_skipped_turn_says_nothing_asks_nothing_more_and_keeps_the_call_in_the_history() {
    let (mut c, t) = greeted(Rules::default());
    c.joined(DANA, "Dana");
    caller_says(&mut c, t, ms(1000), "Dana, can you bring it tomorrow?");
    let (at, out) = turn_ends(&mut c);
    asked(&out);
    let skip = ToolCall { id: "call_1".into(), name: "skip_turn".into(), arguments: "{}".into() };
    c.answer_skipped(at + ms(300), vec![skip.clone()], r#"{"skipped":true}"#);
    let out = drain(&mut c);
    assert!(out.iter().all(|o| !matches!(o, Output::Ask(_) | Output::Synthesize { .. })), "{out:?}");
    assert!(c.is_idle());
    let history = c.history();
    let (call, result) = (&history[history.len() - 2], &history[history.len() - 1]);
    assert_eq!((call.role, call.tool_calls.clone()), (Role::Assistant, vec![skip]));
    assert_eq!((result.role, result.content.as_str()), (Role::Tool, r#"{"skipped":true}"#));
}

#[test]
fn an_invited_party_joining_mid_answer_is_answered_once_that_answer_has_played() {
    let (mut c, at) = answering("They will join shortly.");
    c.joined(DANA, "Dana");
    c.respond_when_free(at + ms(500));
    assert!(drain(&mut c).iter().all(|o| !matches!(o, Output::Ask(_))), "not over the agent's own words");
    c.poll(at + ms(1500));
    let messages = asked(&drain(&mut c));
    assert!(messages.iter().any(|m| m.content.starts_with("Dana joined the call.")));
    assert_eq!(messages.last().unwrap(), &Message::new(Role::Assistant, "They will join shortly."));
}

#[test]
fn what_the_agent_is_told_mid_answer_follows_its_words_and_is_answered_once_they_have_played() {
    let (mut c, at) = answering("Let me ring them.");
    let refused = Message::new(Role::System, "Specialist did not answer the invitation.");
    c.tell(at + ms(500), vec![refused.clone()]);
    assert!(drain(&mut c).iter().all(|o| !matches!(o, Output::Ask(_))), "not over the agent's own words");
    assert!(!c.history().contains(&refused), "not before the words it follows");
    c.poll(at + ms(1500));
    let messages = asked(&drain(&mut c));
    let n = messages.len();
    assert_eq!(messages[n - 2..], [Message::new(Role::Assistant, "Let me ring them."), refused]);
}

#[test]
fn what_the_agent_is_told_while_idle_is_answered_at_once() {
    let (mut c, t) = greeted(Rules::default());
    let refused = Message::new(Role::System, "Specialist did not answer the invitation.");
    c.tell(t + ms(3000), vec![refused.clone()]);
    assert_eq!(asked(&drain(&mut c)).last(), Some(&refused));
}
