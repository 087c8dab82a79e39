//! `lab-tool serve --name NAME --tcp P[,P] --udp P[,P]`: the IPVS lab's real-server program (see
//! `lvs_tests::traffic` for the protocol).

use anyhow::{bail, Context, Result};

fn ports(v: &str) -> Result<Vec<u16>> {
    v.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().with_context(|| format!("port {p:?}")))
        .collect()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("serve") {
        bail!("usage: lab-tool serve --name NAME [--tcp PORTS] [--udp PORTS]");
    }
    let (mut name, mut tcp, mut udp) = (None, Vec::new(), Vec::new());
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let v = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--name" => name = Some(v.clone()),
            "--tcp" => tcp = ports(v)?,
            "--udp" => udp = ports(v)?,
            _ => bail!("unknown argument {a:?}"),
        }
    }
    let name = name.context("--name is required")?;
    lvs_tests::traffic::serve(&name, &tcp, &udp)
}
