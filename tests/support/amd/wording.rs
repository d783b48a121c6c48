//! What people and machines say when a call is answered, written from how they
//! actually sound: people answer briefly, or with a business greeting, a
//! question back or a complaint about the line, and then wait; voicemail
//! greetings are short and personal or long and scripted; carriers and IVRs
//! read on.

use bond_codecs::signals::SplitMix64;

/// What one part of the corpus has people and machines say.
#[derive(Debug, Clone, Copy)]
pub struct Wording {
    pub hellos: &'static [&'static str],
    /// A person giving their name.
    pub name_phrase: fn(&mut SplitMix64) -> String,
    /// A person answering a business line: one unbroken sentence of two to four seconds.
    pub business_answer: fn(&mut SplitMix64) -> String,
    /// A person answering with a question back to the caller.
    pub question_back: fn(&mut SplitMix64) -> String,
    /// A person who can hardly hear the caller.
    pub bad_line: fn(&mut SplitMix64) -> String,
    /// A short personal voicemail greeting: one or two sentences.
    pub short_voicemail: fn(&mut SplitMix64) -> Vec<String>,
    /// A voicemail greeting of two to six sentences, personal or business.
    pub greeting_sentences: fn(&mut SplitMix64) -> Vec<String>,
    /// A carrier's voicemail announcement.
    pub carrier_announcement: fn(&mut SplitMix64) -> Vec<String>,
    /// An IVR's opening menu.
    pub ivr_menu: fn(&mut SplitMix64) -> Vec<String>,
    /// What a television or a room of other people says behind someone who answers.
    pub background: &'static [&'static str],
}

/// The wordings of the first and fresh parts.
pub const WORDING: Wording = Wording {
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

pub fn pick<'a, T: ?Sized>(rng: &mut SplitMix64, items: &'a [&'a T]) -> &'a T {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

const NAMES: [&str; 16] = [
    "Dana",
    "Mike",
    "Sarah",
    "Carlos",
    "Priya",
    "Tom",
    "Jennifer",
    "Ahmed",
    "Olga",
    "Kevin",
    "Maria",
    "Lee",
    "Rebecca",
    "Jamal",
    "Hannah",
    "Doctor Patel",
];
const COMPANIES: [&str; 10] = [
    "Acme Plumbing",
    "Northside Dental",
    "Blue Sky Travel",
    "Greenfield Insurance",
    "Metro Cable",
    "City Hall",
    "Riverside Auto Repair",
    "Smith and Jones",
    "the front desk",
    "Sunrise Bakery",
];

const HELLOS: [&str; 20] = [
    "Hello?",
    "Hello.",
    "Hi.",
    "Yeah?",
    "Yes?",
    "Yeah, hi.",
    "Hey.",
    "Hello, who's this?",
    "Hi there.",
    "Yes, hello?",
    "Good morning.",
    "Speaking.",
    "Yep, hello?",
    "Hello, yes?",
    "Hiya.",
    "Uh, hello?",
    "Hello, hello?",
    "Mm, hello?",
    "Good afternoon.",
    "Yeah, go ahead.",
];

/// A person giving their name.
fn name_phrase(rng: &mut SplitMix64) -> String {
    let name = pick(rng, &NAMES);
    match rng.next_u64() % 6 {
        0 => format!("This is {name} speaking."),
        1 => format!("{name} speaking."),
        2 => format!("Hi, {name} here."),
        3 => format!("Hello, this is {name}."),
        4 => format!("{name}."),
        _ => format!("Hi, it's {name}."),
    }
}

/// A person answering a business line: one unbroken sentence of two to four seconds.
fn business_answer(rng: &mut SplitMix64) -> String {
    let name = pick(rng, &NAMES);
    let company = pick(rng, &COMPANIES);
    match rng.next_u64() % 7 {
        0 => format!("Thank you for calling {company}, this is {name}, how can I help you?"),
        1 => format!("{company}, {name} speaking, how can I help?"),
        2 => format!("Good morning, {company}, how may I direct your call?"),
        3 => format!("Hi, {company}, this is {name}."),
        4 => format!("{company}, this is {name}, what can I do for you today?"),
        5 => format!("Good afternoon, you've reached {company}, {name} speaking."),
        _ => format!("Hello, {company}, how can I help you?"),
    }
}

/// A person answering with a question back to the caller.
fn question_back(rng: &mut SplitMix64) -> String {
    let name = pick(rng, &NAMES);
    match rng.next_u64() % 6 {
        0 => "Hello? Yes, who's calling please?".to_owned(),
        1 => format!("Hi, this is {name}, who am I speaking with?"),
        2 => "Hello? Sorry, who is this?".to_owned(),
        3 => "Yeah, hello? Can I help you?".to_owned(),
        4 => format!("Hello, this is {name}, what can I do for you?"),
        _ => "Hi, yes, this is she, who's calling?".to_owned(),
    }
}

/// A person who can hardly hear the caller.
fn bad_line(rng: &mut SplitMix64) -> String {
    match rng.next_u64() % 5 {
        0 => "Hello? Hello? I can hardly hear you.".to_owned(),
        1 => "Hello? Sorry, you're breaking up, can you say that again?".to_owned(),
        2 => "Hi, sorry, it's really loud here, who is this?".to_owned(),
        3 => "Hello? I can't hear you very well, can you speak up?".to_owned(),
        _ => "Hello? Is anybody there?".to_owned(),
    }
}

/// A short personal voicemail greeting: one or two sentences.
fn short_voicemail(rng: &mut SplitMix64) -> Vec<String> {
    let name = pick(rng, &NAMES);
    match rng.next_u64() % 7 {
        0 => vec![format!("Hi, it's {name}, leave a message.")],
        1 => vec![format!("{name}."), "Leave a message.".to_owned()],
        2 => vec![format!("Hey, it's {name}."), "You know what to do.".to_owned()],
        3 => vec![format!("This is {name}, I'll call you back.")],
        4 => vec![format!("Hi, you've reached {name}."), "Please leave a message after the beep.".to_owned()],
        5 => vec![format!("It's {name}, sorry I missed you, leave a message.")],
        _ => vec!["Leave a message.".to_owned()],
    }
}

/// A voicemail greeting of two to six sentences, personal or business.
fn greeting_sentences(rng: &mut SplitMix64) -> Vec<String> {
    let name = pick(rng, &NAMES);
    let company = pick(rng, &COMPANIES);
    let openers = [
        format!("Hi, you've reached {name}."),
        format!("Hello, this is {name}."),
        format!("You have reached the voicemail of {name} at {company}."),
        format!("Hey, it's {name}."),
        format!("Thank you for calling {company}."),
        format!("Hi, this is {name}, and you've reached my phone."),
        format!("You've reached {company}."),
    ];
    let middle = [
        "I can't come to the phone right now.",
        "Sorry I missed your call.",
        "I'm either on the other line or away from my desk.",
        "Our office is currently closed.",
        "If this is urgent, please call my mobile.",
        "Leave your name, number and a short message.",
        "I'll get back to you as soon as I can.",
        "Our hours are nine to five, Monday through Friday.",
        "Thanks for calling.",
        "I'm out of the office until Monday.",
        "For emergencies, please hang up and dial nine one one.",
    ];
    let closers = [
        "Please leave a message after the tone.",
        "Leave a message and I'll call you back.",
        "Have a great day!",
        "Talk to you soon. Bye.",
        "Please leave a message.",
        "We will return your call on the next business day.",
    ];
    let mut out = vec![openers[(rng.next_u64() % openers.len() as u64) as usize].clone()];
    let extra = 1 + rng.next_u64() % 4;
    for _ in 0..extra {
        out.push(pick(rng, &middle).to_owned());
    }
    out.push(pick(rng, &closers).to_owned());
    out
}

fn digits(rng: &mut SplitMix64) -> String {
    (0..10)
        .map(|i| {
            let d = (rng.next_u64() % 10).to_string();
            if i == 3 || i == 6 {
                format!(", {d}")
            } else {
                format!(" {d}")
            }
        })
        .collect()
}

/// A carrier's voicemail announcement.
fn carrier_announcement(rng: &mut SplitMix64) -> Vec<String> {
    let first = match rng.next_u64() % 4 {
        0 => format!("The number{} is not available.", digits(rng)),
        1 => "The person you are trying to reach is not available.".to_owned(),
        2 => "The subscriber you have dialed is not available at the moment.".to_owned(),
        _ => format!(
            "Your call has been forwarded to an automated voice messaging system.{} is not available.",
            digits(rng)
        ),
    };
    vec![
        first,
        "At the tone, please record your message.".to_owned(),
        "When you have finished recording, you may hang up or press 1 for more options.".to_owned(),
    ]
}

/// An IVR's opening menu.
fn ivr_menu(rng: &mut SplitMix64) -> Vec<String> {
    let company = pick(rng, &COMPANIES);
    vec![
        format!("Thank you for calling {company}."),
        "Your call is important to us.".to_owned(),
        "For sales, press 1.".to_owned(),
        "For billing, press 2.".to_owned(),
        "For all other inquiries, please stay on the line.".to_owned(),
    ]
}

/// What a television or a room of other people says behind someone who answers.
const BACKGROUND: [&str; 6] = [
    "Tonight on the evening news, heavy rain is expected across the region, with flooding in low areas.",
    "And the crowd goes wild as the home team scores again in the final minute of the game.",
    "Did you see where I put the keys? I think they were on the kitchen table next to the mail.",
    "Coming up after the break, we will talk to the mayor about the new park and the budget for next year.",
    "Mom, can we go to the store later? I need new shoes for school and a notebook too.",
    "This weekend only, save fifty percent on all mattresses, sofas and dining sets at our downtown store.",
];
