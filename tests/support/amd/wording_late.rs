//! The late part's wordings (`corpus::LATE`), written on 2026-12-01 after
//! every change to the detector so far, without reusing a sentence of the
//! first wordings (`wording`): how people answer a number they do not know
//! (a hello, a family name, a workplace, a question, a line that is bad), how
//! people's own voicemail greetings and businesses' after-hours messages go,
//! what carriers and switchboards say, and what a room or a radio says behind.

use bond_codecs::signals::SplitMix64;

use super::wording::{pick, Wording};

/// The late part's wordings.
pub const LATE_WORDING: Wording = Wording {
    hellos: &HELLOS,
    name_phrase,
    business_answer,
    question_back,
    bad_line,
    short_voicemail,
    greeting_sentences,
    carrier_announcement,
    ivr_menu,
    background: &BACKGROUND,
};

const NAMES: [&str; 14] = [
    "Brenda", "Luis", "Gary", "Mei", "Patrick", "Yolanda", "Frank", "Anita", "Derek", "Sofia", "Walter",
    "Keisha", "Martin", "Irene",
];
const FAMILIES: [&str; 6] = ["Johnson", "Nguyen", "O'Brien", "Garcia", "Kowalski", "Whitaker"];
const PLACES: [&str; 8] = [
    "Valley Animal Hospital",
    "Lakeview Realty",
    "Tony's Pizza",
    "Harbor Freight Lines",
    "the parts department",
    "Westside Pharmacy",
    "Bright Smile Orthodontics",
    "Summit Roofing",
];

const HELLOS: [&str; 14] = [
    "Hello, hi.",
    "Hi, hello?",
    "Yes, hi.",
    "Yello.",
    "Hey there.",
    "Uh huh, hello.",
    "Hello? Yes.",
    "Yeah, hello.",
    "Morning.",
    "Evening.",
    "Hi, who is it?",
    "Hello, go ahead.",
    "Yes, speaking.",
    "Hello there.",
];

fn name_phrase(rng: &mut SplitMix64) -> String {
    let name = pick(rng, &NAMES);
    let family = pick(rng, &FAMILIES);
    match rng.next_u64() % 5 {
        0 => format!("{family} residence."),
        1 => format!("Hello, {family}s."),
        2 => format!("Yeah, this is {name}."),
        3 => format!("{name} here, hello?"),
        _ => format!("Hi, {name} {family}."),
    }
}

fn business_answer(rng: &mut SplitMix64) -> String {
    let name = pick(rng, &NAMES);
    let place = pick(rng, &PLACES);
    match rng.next_u64() % 6 {
        0 => format!("{place}, this is {name}, can you hold for just a second?"),
        1 => format!("Good evening, {place}, what can I get started for you?"),
        2 => format!("{place}, {name} speaking, who am I talking to?"),
        3 => format!("Thanks for calling {place}, my name is {name}."),
        4 => format!("Hi, {place}, are you calling to make an appointment?"),
        _ => format!("{place}, how can I help you this afternoon?"),
    }
}

fn question_back(rng: &mut SplitMix64) -> String {
    let name = pick(rng, &NAMES);
    match rng.next_u64() % 6 {
        0 => "Hello? Who is calling?".to_owned(),
        1 => "Yeah? What's this about?".to_owned(),
        2 => format!("Hi, is this about the car, {name}?"),
        3 => "Hello, did somebody just call this number?".to_owned(),
        4 => "Hi, sorry, who did you want?".to_owned(),
        _ => "Hello? Is this the school?".to_owned(),
    }
}

fn bad_line(rng: &mut SplitMix64) -> String {
    match rng.next_u64() % 5 {
        0 => "Hello? You're really faint, hang on.".to_owned(),
        1 => "Hi, I'm driving, you're on speaker, go ahead.".to_owned(),
        2 => "Hello? Can you hear me? I've only got one bar.".to_owned(),
        3 => "Sorry, say again? The line keeps cutting out.".to_owned(),
        _ => "Hello? Hello? Anyone there?".to_owned(),
    }
}

fn short_voicemail(rng: &mut SplitMix64) -> Vec<String> {
    let name = pick(rng, &NAMES);
    let family = pick(rng, &FAMILIES);
    match rng.next_u64() % 7 {
        0 => vec![format!("You've got {name}."), "Do your thing at the beep.".to_owned()],
        1 => vec![format!("{name} {family}, not here, leave it at the tone.")],
        2 => vec![format!("Hey, {name} here."), "Text me, I don't check these.".to_owned()],
        3 => vec![format!("The {family}s."), "Leave us a message.".to_owned()],
        4 => vec!["Oh, hi.".to_owned(), format!("This is {name}, call you back soon.")],
        5 => vec![format!("{name}'s phone, say something nice.")],
        _ => vec!["Not available, leave a message.".to_owned()],
    }
}

fn greeting_sentences(rng: &mut SplitMix64) -> Vec<String> {
    let name = pick(rng, &NAMES);
    let family = pick(rng, &FAMILIES);
    let place = pick(rng, &PLACES);
    let openers = [
        format!("Hi, this is {name} {family}."),
        format!("Hello, you have reached {place}."),
        format!("Hey, it's {name}, and you know the drill."),
        format!("You have reached the {family} family."),
        format!("Thanks for calling {place}, you have reached us after hours."),
        format!("Hi there, this is {name} from {place}."),
    ];
    let middle = [
        "We can't get to the phone at the moment.",
        "I'm probably out walking the dog.",
        "I'm in meetings for most of the day.",
        "We are closed for the holiday.",
        "If you're calling about an order, please have your order number ready.",
        "Please say your name and the best time to reach you.",
        "I return calls in the evening.",
        "Our regular hours are eight to six, Monday to Saturday.",
        "If this is about a prescription refill, please call back during business hours.",
        "You can also reach me by email.",
    ];
    let closers = [
        "Wait for the beep and talk to me.",
        "We'll call you back tomorrow.",
        "Thanks, and have a good one.",
        "Speak after the beep.",
        "Bye for now.",
        "Leave your number and we'll get right back to you.",
    ];
    let mut out = vec![openers[(rng.next_u64() % openers.len() as u64) as usize].clone()];
    for _ in 0..1 + rng.next_u64() % 4 {
        out.push(pick(rng, &middle).to_owned());
    }
    out.push(pick(rng, &closers).to_owned());
    out
}

fn carrier_announcement(rng: &mut SplitMix64) -> Vec<String> {
    let area: String = (0..3).map(|_| (rng.next_u64() % 10).to_string()).collect::<Vec<_>>().join(" ");
    let first = match rng.next_u64() % 4 {
        0 => "The wireless customer you are calling is not available.".to_owned(),
        1 => format!("You have reached the voice mailbox of {area}."),
        2 => "The party you are calling cannot take your call right now.".to_owned(),
        _ => "Sorry, the mobile phone you are calling is switched off.".to_owned(),
    };
    vec![first, "Please record your message when you hear the tone.".to_owned()]
}

fn ivr_menu(rng: &mut SplitMix64) -> Vec<String> {
    let place = pick(rng, &PLACES);
    vec![
        format!("Welcome to {place}."),
        "Please listen carefully, as our options have recently changed.".to_owned(),
        "To check on an existing order, say order, or press one.".to_owned(),
        "To speak with someone, stay on the line.".to_owned(),
    ]
}

const BACKGROUND: [&str; 5] = [
    "And that's the forecast, clear skies tomorrow with a high near seventy, back to you.",
    "Grandma, the kettle's boiling, do you want me to turn it off?",
    "Traffic on the interstate is backed up for three miles past the bridge this morning.",
    "Who left the back door open? The cat got out again.",
    "Call now and get a second one free, just pay separate shipping and handling.",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::amd::wording::WORDING;

    /// Every sentence `wording` says in 400 draws of each of its kinds.
    fn sentences(wording: &Wording) -> BTreeSet<String> {
        let mut rng = SplitMix64::new(2026);
        let mut out: BTreeSet<String> =
            wording.hellos.iter().chain(wording.background).map(|s| (*s).to_owned()).collect();
        for _ in 0..400 {
            for say in [wording.name_phrase, wording.business_answer, wording.question_back, wording.bad_line]
            {
                out.insert(say(&mut rng));
            }
            for say in [
                wording.short_voicemail,
                wording.greeting_sentences,
                wording.carrier_announcement,
                wording.ivr_menu,
            ] {
                out.extend(say(&mut rng));
            }
        }
        out
    }

    #[test]
    fn the_late_wordings_share_no_sentence_with_the_first() {
        let (first, late) = (sentences(&WORDING), sentences(&LATE_WORDING));
        let shared: Vec<&String> = first.intersection(&late).collect();
        assert!(shared.is_empty(), "said in both: {shared:?}");
        assert!(late.len() > 100, "only {} sentences", late.len());
    }
}
