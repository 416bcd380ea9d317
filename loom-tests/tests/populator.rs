//! Populate-ahead (`MapWriter::populator`): the preparer faults a new
//! segment's pages in while the writer already owns it, so the writer's
//! check that nobody else holds the map when it writes the header must
//! count populators, which come and go on another thread.
#![cfg(loom)]

mod common;

use common::model;
use varvelog::__loom::header_beside_a_populator;

#[test]
#[cfg_attr(feature = "mutant-populator", ignore = "the mutant breaks this model on purpose")]
fn the_header_check_never_mistakes_a_leaving_populator_for_a_foreign_holder() {
    // Goal: the header write's check (populator count, then the map's
    // holders) holds whenever a populator is dropped meanwhile. Method: a
    // populator made by the writer is dropped on another thread while the
    // writer writes the header; loom explores every interleaving of the
    // drop (hold, then count) with the check's two loads.
    model(header_beside_a_populator);
}

#[test]
#[cfg(feature = "mutant-populator")]
#[should_panic(expected = "others <= populators")]
fn mutant_populator_reading_holds_first_is_caught() {
    // Goal: prove the model can fail. Method: built with `mutant-populator`,
    // the check reads the holders before the count; a populator dropped
    // between the two loads then looks like a foreign holder.
    model(header_beside_a_populator);
}
