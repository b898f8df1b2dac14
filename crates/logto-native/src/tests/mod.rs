//! The crate's own test suites, which drive the core end to end against an in-process stand-in
//! for Logto (`stand`): what is kept and what is revoked (`keeping`), every refusal and the step
//! it stops at (`refusals`), and generated inputs for the parsers of outside input
//! (`properties`), and what is done with any answer as HTTP (`answers`). Each module's unit tests stay beside its code.

mod answers;
mod keeping;
mod properties;
mod refusals;
pub(crate) mod stand;
