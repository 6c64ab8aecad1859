//! Deterministic tests of the delivery-service core and its stores: an explicit clock, a
//! seeded RNG, no sleeps, no server.

mod harness;

mod auth;
mod group;
mod inbox;
mod limits;
mod prechecked;
mod privacy;
mod race;
mod restart;
mod retention;
mod store_suite;

/// Instantiates generic test functions `fn name<S: Store>(store: S)` once per backend.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn memory() {
                    super::$name($crate::harness::memory_store());
                }
                #[test]
                fn sqlite() {
                    super::$name($crate::harness::sqlite_store());
                }
            }
        )*
    };
}
