//! `lab-tool serve --name NAME --tcp P[,P] --udp P[,P]` and
//! `lab-tool http --name NAME --port P [--delay-file F]`: the IPVS lab's real-server programs (see
//! `lvs_tests::traffic` for the protocols).

use anyhow::{bail, Context, Result};

fn ports(v: &str) -> Result<Vec<u16>> {
    v.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().with_context(|| format!("port {p:?}")))
        .collect()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verb = args.first().map(String::as_str);
    if !matches!(verb, Some("serve") | Some("http")) {
        bail!("usage: lab-tool serve --name NAME [--tcp PORTS] [--udp PORTS] | lab-tool http --name NAME --port P [--delay-file F]");
    }
    let (mut name, mut tcp, mut udp, mut port, mut delay) =
        (None, Vec::new(), Vec::new(), None, None);
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let v = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--name" => name = Some(v.clone()),
            "--tcp" => tcp = ports(v)?,
            "--udp" => udp = ports(v)?,
            "--port" => port = Some(v.parse::<u16>().with_context(|| format!("--port {v:?}"))?),
            "--delay-file" => delay = Some(std::path::PathBuf::from(v)),
            _ => bail!("unknown argument {a:?}"),
        }
    }
    let name = name.context("--name is required")?;
    if verb == Some("http") {
        let port = port.context("--port is required")?;
        return lvs_tests::traffic::serve_http(&name, port, delay);
    }
    lvs_tests::traffic::serve(&name, &tcp, &udp)
}
