//! Sentences whose speech streams in, in parts (a streaming text-to-speech
//! engine): played as the parts come, over only once complete, and heard in
//! proportion when the caller cuts in before the last part.

use super::tests::{caller_says, drain, greeted, ms, notes, synthesized, turn_ends};
use super::*;

#[test]
fn a_streamed_sentence_plays_from_its_first_part_and_the_answer_ends_once_it_is_complete() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "When do you open?");
    let (at, _) = turn_ends(&mut c);
    c.answer_text(at, "We open at nine.");
    c.answer_done(at);
    let (id, _) = synthesized(&drain(&mut c))[0].clone();
    c.audio_ready(at + ms(150), id, ms(200), false);
    assert_eq!(drain(&mut c), vec![Output::Play { id, from: ms(0) }], "the first part plays at once");
    c.audio_more(at + ms(250), id, ms(400));
    assert_eq!(drain(&mut c), vec![Output::Play { id, from: ms(200) }], "the next follows on");
    c.poll(at + ms(1000));
    assert!(notes(&drain(&mut c)).is_empty(), "all that came has played, but more may come");
    c.audio_more(at + ms(1000), id, ms(300));
    assert_eq!(drain(&mut c), vec![Output::Play { id, from: ms(600) }]);
    c.audio_complete(at + ms(1100), id);
    assert_eq!(c.deadline(), Some(at + ms(1300)), "the last part plays from when it came");
    c.poll(at + ms(1300));
    let Some(Note::AgentTurn { heard, interrupted: false, latency, .. }) = notes(&drain(&mut c)).pop() else {
        panic!("the answer ended")
    };
    assert_eq!(heard, "We open at nine.");
    let speech_end = t + ms(1000);
    assert_eq!(latency.first_audio, Some(at + ms(150) - speech_end), "first audio: the first part");
}

#[test]
fn a_caller_cutting_in_before_the_last_part_keeps_the_words_played_of_the_guessed_whole() {
    let (mut c, t) = greeted(Rules::default());
    caller_says(&mut c, t, ms(1000), "When do you open?");
    let (at, _) = turn_ends(&mut c);
    // 38 characters: about 2.7 s of speech, of which 600 ms arrives.
    c.answer_text(at, "We open at nine every weekday morning.");
    c.answer_done(at);
    let (id, _) = synthesized(&drain(&mut c))[0].clone();
    c.audio_ready(at, id, ms(600), false);
    drain(&mut c);
    c.speech_started(Party::CALLER, at + ms(500));
    assert_eq!(drain(&mut c), vec![Output::StopAudio]);
    c.audio_more(at + ms(600), id, ms(1000));
    assert_eq!(drain(&mut c), vec![], "a part that comes while paused is not played");
    c.speech_ended(Party::CALLER, at + ms(2000), at + ms(1400), ms(900));
    let Some(Note::AgentTurn { heard, interrupted: true, said, .. }) = notes(&drain(&mut c)).pop() else {
        panic!("interrupted")
    };
    // 500 ms of the guessed 2.7 s: one word of seven (500 ms of the 600 that had come would be six).
    assert_eq!(heard, "We");
    assert_eq!(said, "We open at nine every weekday morning.");
}
