//! The multi-node recipe (launcher/multinode.sh) on two "nodes" made of network namespaces
//! on this machine: 2 nodes × 2 ranks pass the selftest, train exactly as 4 ranks on one
//! node, and a downed link between them ends the job within the collective deadline + 30 s.
//!
//! Set-up (docs: /work/shared/docs/cluster-and-interop-facts.md, "Two nodes on one
//! machine"): two namespaces joined by a veth pair on a private /24 that exists only
//! between them; each "node" also gets its own host name (a UTS namespace) so messages can
//! name it; `mpirun` runs inside the first; Open MPI reaches the second through an rsh
//! agent that runs `ip netns exec`; `--btl tcp,self` (both share /dev/shm). Needs root and
//! iproute2 (CI has both; scripts/setup.sh installs iproute2). Each namespace lowers its
//! own `net.ipv4.tcp_retries2` to 5, as launcher/README.md recommends for nodes. Everything
//! is removed in `Drop`, also when a test fails.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SUBNET: &str = "10.213.7.0/24";

/// Two network namespaces joined by a veth pair, an rsh agent and a hostfile.
struct TwoNodes {
    a: String,
    b: String,
    /// The veth end inside `b`.
    link_b: String,
    dir: tempfile::TempDir,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run ip ({e}): install iproute2 (scripts/setup.sh does)")
    });
    assert!(
        o.status.success(),
        "ip {}: {} (these tests need root)",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl TwoNodes {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let nodes = Self {
            a: format!("rpo-ci-a-{id}"),
            b: format!("rpo-ci-b-{id}"),
            link_b: "rpo-veth-b".into(),
            dir: tempfile::tempdir().unwrap(),
        };
        // From here on, Drop removes whatever was created.
        ip(&["netns", "add", &nodes.a]);
        ip(&["netns", "add", &nodes.b]);
        // Created inside `a` (names are per namespace), then one end moved to `b`.
        ip(&[
            "-n",
            &nodes.a,
            "link",
            "add",
            "rpo-veth-a",
            "type",
            "veth",
            "peer",
            "name",
            &nodes.link_b,
        ]);
        ip(&[
            "-n",
            &nodes.a,
            "link",
            "set",
            &nodes.link_b,
            "netns",
            &nodes.b,
        ]);
        ip(&[
            "-n",
            &nodes.a,
            "addr",
            "add",
            "10.213.7.1/24",
            "dev",
            "rpo-veth-a",
        ]);
        ip(&[
            "-n",
            &nodes.b,
            "addr",
            "add",
            "10.213.7.2/24",
            "dev",
            &nodes.link_b,
        ]);
        for (ns, link) in [(&nodes.a, "rpo-veth-a"), (&nodes.b, nodes.link_b.as_str())] {
            ip(&["-n", ns, "link", "set", link, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            // The node setting launcher/README.md recommends: Open MPI's daemons notice a
            // lost peer only when TCP gives up retransmitting (Linux default 15 tries,
            // ~15 min; 5 is ~13 s). Per network namespace: the host's is untouched.
            ip(&[
                "netns",
                "exec",
                ns,
                "sh",
                "-c",
                "echo 5 > /proc/sys/net/ipv4/tcp_retries2",
            ]);
        }
        std::fs::write(
            nodes.hostfile(),
            format!("{} slots=2\n{} slots=2\n", nodes.a, nodes.b),
        )
        .unwrap();
        // Open MPI calls `AGENT [options] HOST COMMAND...`; HOST is a namespace here.
        let agent = nodes.agent();
        std::fs::write(
            &agent,
            "#!/bin/sh\n\
             while [ $# -gt 0 ] && [ \"${1#-}\" != \"$1\" ]; do shift; done\n\
             host=\"$1\"; shift\n\
             exec ip netns exec \"$host\" unshare --uts sh -c \"hostname $host; $*\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        nodes
    }

    fn hostfile(&self) -> PathBuf {
        self.dir.path().join("hostfile")
    }

    fn agent(&self) -> PathBuf {
        self.dir.path().join("netns-agent.sh")
    }

    /// `launcher/multinode.sh --hostfile … --subnet 10.213.7.0/24 --btl tcp,self [extra] --
    /// <args>`, started inside node `a` under its own host name.
    fn recipe(&self, extra: &[&str], args: &[&str]) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../launcher/multinode.sh");
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.a, "unshare", "--uts", "sh", "-c"])
            .arg(format!("hostname {} && exec \"$0\" \"$@\"", self.a))
            .arg(script)
            .args(["--hostfile", self.hostfile().to_str().unwrap()])
            .args(["--subnet", SUBNET, "--btl", "tcp,self"])
            .args(extra)
            .arg("--")
            .args(args)
            .env("RPO_SHARD", BIN)
            .env("RPO_LOG", "warn")
            .env(
                "MPIRUN_ARGS",
                format!("--mca plm_rsh_agent {}", self.agent().display()),
            )
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        c
    }

    /// Pids of every process inside either namespace.
    fn pids(&self) -> Vec<u32> {
        [&self.a, &self.b]
            .iter()
            .flat_map(|ns| {
                let o = Command::new("ip")
                    .args(["netns", "pids", ns])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        for pid in self.pids() {
            kill_9(pid);
        }
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The fast run of `steps` steps under ZeRO-3.
fn train_args(out: &Path, steps: usize) -> Vec<String> {
    common::train_args(fast_run_sets(out, steps), &["zero.stage=3"])
}

fn output(c: &mut Command) -> Output {
    c.output().expect("start the recipe")
}

#[test]
fn two_nodes_pass_the_selftest_and_train_as_one_node() {
    let nodes = TwoNodes::new();
    let o = output(&mut nodes.recipe(&[], &["selftest"]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("selftest: 4 rank(s)") && out.contains(", 0 failed"),
        "selftest on 2 nodes × 2 ranks:\n{out}\n{}",
        stderr(&o)
    );

    let two = tempfile::tempdir().unwrap();
    let o = output(&mut nodes.recipe(&[], &strs(&train_args(two.path(), 5))));
    assert!(o.status.success(), "training on 2 nodes: {}", stderr(&o));
    let one = tempfile::tempdir().unwrap();
    let o = mpirun(4, &strs(&train_args(one.path(), 5)));
    assert!(o.status.success(), "training on 1 node: {}", stderr(&o));
    let (m2, m1) = (metrics(two.path()), metrics(one.path()));
    assert_eq!(m2.len(), 5);
    for key in ["loss", "grad_norm", "reward_margin"] {
        assert_same_metric(key, &m2, &m1, 0.0);
    }
    assert_same_weights(&weights(two.path()), &weights(one.path()), 0.0);
    assert!(
        nodes.pids().is_empty(),
        "processes left: {:?}",
        nodes.pids()
    );
}

#[test]
fn a_downed_link_ends_the_two_node_job_within_the_deadline() {
    let nodes = TwoNodes::new();
    let run = tempfile::tempdir().unwrap();
    let mut job = nodes
        .recipe(
            &["--timeout", "10"],
            &strs(&train_args(run.path(), 100_000)),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the recipe");
    wait_for_steps(&mut job, run.path(), 2);
    let down_at = Instant::now();
    ip(&["-n", &nodes.b, "link", "set", &nodes.link_b, "down"]);
    let status = wait_at_most(
        &mut job,
        down_at,
        Duration::from_secs(90),
        "the link went down",
    );
    let waited = down_at.elapsed();
    let err = read_stderr(&mut job);
    eprintln!("the job ended {waited:?} after the link went down ({status}); it said:\n{err}");
    assert!(
        !status.success(),
        "the job exited 0 without its second node"
    );
    assert!(
        waited < Duration::from_secs(40),
        "{waited:?} > deadline 10 s + 30 s"
    );
    // Node a's ranks name node b's ranks, by host.
    assert!(
        err.contains(&format!("ranks not answering (stopped, dead, unreachable, or busy outside collectives for longer than the timeout): 2 (host {b}), 3 (host {b})", b = nodes.b)),
        "no message names node {}'s ranks:\n{err}",
        nodes.b
    );
    // Nothing left on either node (processes on b may take the launcher's keepalive).
    let ended = Instant::now();
    while !nodes.pids().is_empty() && ended.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        nodes.pids().is_empty(),
        "processes left: {:?}",
        nodes.pids()
    );
}
