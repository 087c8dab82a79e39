//! `lvsctl simulate`: runs the scheduling simulator's scenarios locally (no director needed)
//! and prints their tables or JSON.

use std::io::Write;

use clap::Args;
use cluster_core::sim::{self, Kind, DEFAULT_SEEDS};
use serde::Serialize;

use crate::cli::OutputFormat;

#[derive(Debug, Args)]
#[command(
    after_help = "Scenarios: lvsctl simulate --list. Schedulers: random rr wrr lc wlc \
                        sed nq mh jsq jsqD (e.g. jsq2) policy."
)]
pub struct SimulateArgs {
    /// Scenario to run, or all
    #[arg(value_name = "SCENARIO", default_value = "all", value_parser = parse_scenario)]
    pub scenario: String,
    /// List the scenarios with a one-line description
    #[arg(long)]
    pub list: bool,
    /// First seed; runs use SEED, SEED+1, ...
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Number of seeds per scheduler
    #[arg(long, value_name = "K", default_value_t = DEFAULT_SEEDS as u32,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub seeds: u32,
    /// Simulated seconds per run, warm-up included [default: the scenario's]
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// Comma-separated schedulers [default: all]
    #[arg(long, value_name = "LIST", value_parser = parse_schedulers)]
    pub schedulers: Option<Schedulers>,
}

#[derive(Debug, Clone)]
pub struct Schedulers(Vec<Kind>);

fn parse_scenario(s: &str) -> Result<String, String> {
    if s == "all" || sim::scenario(s).is_some() {
        return Ok(s.to_string());
    }
    let names: Vec<&str> = sim::scenarios().iter().map(|s| s.name).collect();
    Err(format!(
        "unknown scenario {s:?} (expected all or one of: {})",
        names.join(", ")
    ))
}

fn parse_duration(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

fn parse_schedulers(s: &str) -> Result<Schedulers, String> {
    let mut out: Vec<Kind> = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let k: Kind = name.parse::<Kind>().map_err(|e| e.to_string())?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        return Err("names no scheduler".into());
    }
    Ok(Schedulers(out))
}

#[derive(Serialize)]
struct ScenarioInfo {
    name: &'static str,
    description: &'static str,
    default_duration_s: f64,
}

pub fn run(a: &SimulateArgs, format: OutputFormat) -> anyhow::Result<()> {
    if a.list {
        let list: Vec<ScenarioInfo> = sim::scenarios()
            .into_iter()
            .map(|s| ScenarioInfo {
                name: s.name,
                description: s.description,
                default_duration_s: s.default_duration_s,
            })
            .collect();
        if format == OutputFormat::Json {
            emit(&(serde_json::to_string_pretty(&list)? + "\n"));
        } else {
            let width = list.iter().map(|s| s.name.len()).max().unwrap_or(0);
            for s in &list {
                emit(&format!("{:<width$}  {}\n", s.name, s.description));
            }
        }
        return Ok(());
    }
    let kinds = a.schedulers.clone().map_or_else(Kind::all, |s| s.0);
    let seeds: Vec<u64> = (0..a.seeds as u64)
        .map(|i| a.seed.wrapping_add(i))
        .collect();
    let mut reports = Vec::new();
    for s in sim::scenarios()
        .iter()
        .filter(|s| a.scenario == "all" || s.name == a.scenario)
    {
        let r = sim::run_scenario(s, &kinds, &seeds, a.duration);
        if format == OutputFormat::Table {
            // Each scenario as it finishes: `all` takes a while.
            let sep = if reports.is_empty() { "" } else { "\n" };
            emit(&format!("{sep}{}", r.table()));
        }
        reports.push(r);
    }
    if format == OutputFormat::Json {
        emit(&(serde_json::to_string_pretty(&reports)? + "\n"));
    }
    Ok(())
}

fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe is not worth an error message.
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_arguments_are_checked() {
        assert!(parse_scenario("degraded").is_ok());
        assert!(parse_scenario("all").is_ok());
        let e = parse_scenario("nosuch").unwrap_err();
        assert!(e.contains("nosuch") && e.contains("degraded"), "{e}");
        assert!(parse_duration("0").unwrap_err().contains("\"0\""));
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("nan").is_err());
        assert_eq!(parse_duration("90"), Ok(90.0));
        let s = parse_schedulers("rr, wlc,rr,jsq2").unwrap();
        assert_eq!(s.0, vec![Kind::Rr, Kind::Wlc, Kind::JsqD(2)]);
        assert!(parse_schedulers("rr,fastest")
            .unwrap_err()
            .contains("fastest"));
        assert!(parse_schedulers(",").is_err());
    }
}
