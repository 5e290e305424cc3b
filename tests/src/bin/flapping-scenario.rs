//! Prints a generated mock scenario with N statistic flaps (about 4·N records
//! when recorded): `flapping-scenario 250000 > flaps.toml`. Used by `bench/replay`.

fn main() -> std::process::ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref().map(str::parse::<u64>) {
        Some(Ok(flaps)) => {
            print!("{}", drctl_e2e::flapping_scenario(flaps));
            std::process::ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: flapping-scenario FLAPS (a whole number)");
            std::process::ExitCode::from(2)
        }
    }
}
