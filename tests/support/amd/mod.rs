//! The answering-machine detector's evaluation corpus and its scoring.

pub mod corpus;
pub mod eval;
pub mod labels;
pub mod line;
pub mod live;
pub mod prompts;
pub mod report;
pub mod synth;
pub mod wording;
pub mod wording_late;
pub mod words;
