//! Measures the cost of one password hash with the console's parameters (Argon2id,
//! m=19 MiB, t=2, p=1): the floor of a sign-in's latency and the ceiling of sign-ins
//! per second per core. `cargo run -p pacsguard-console --example argon2_cost`
//! (dependencies are built optimised even in debug builds, so the figure holds).

use std::time::Instant;

fn main() {
    let rounds = 20;
    let stored =
        pacsguard_console::password::hash("amber lantern over quiet harbour").expect("hash");
    let start = Instant::now();
    for _ in 0..rounds {
        assert!(pacsguard_console::password::verify(
            "amber lantern over quiet harbour",
            &stored
        ));
    }
    let each = start.elapsed().as_secs_f64() / f64::from(rounds);
    println!(
        "argon2id m={} KiB t={} p={}: {:.1} ms per verification ({rounds} rounds), {:.1} per second per core",
        pacsguard_console::password::M_COST_KIB,
        pacsguard_console::password::T_COST,
        pacsguard_console::password::P_COST,
        each * 1000.0,
        1.0 / each
    );
}
