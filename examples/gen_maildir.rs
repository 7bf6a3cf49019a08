//! Write the benchmarks' deterministic Maildir: `cargo run --release --example gen_maildir -- DIR N`
//! (N messages into DIR/cur, DIR/new and DIR/.Sent). Used by `scripts/bench-imap.sh` to seed a
//! real Dovecot mailbox, and by `scripts/bench.py` (`gen_maildir --terms` prints the words its
//! queries look for).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--terms") {
        // The words the benchmark's queries use, as JSON: product names of Zipf rank 0, 30
        // and 1000, and customer 42's address.
        let names: Vec<String> = [0, 30, 1000]
            .iter()
            .map(|&k| braid::demo::maildir::product_name(k))
            .collect();
        println!(
            "{{\"common\": \"{}\", \"medium\": \"{}\", \"rare\": \"{}\", \"address\": \"{}\"}}",
            names[0],
            names[1],
            names[2],
            braid::demo::maildir::customer_address(42)
        );
        return std::process::ExitCode::SUCCESS;
    }
    let (Some(dir), Some(n)) = (
        args.get(1),
        args.get(2)
            .and_then(|n| n.replace(['_', ','], "").parse::<usize>().ok()),
    ) else {
        eprintln!("usage: gen_maildir DIR N");
        return std::process::ExitCode::from(2);
    };
    let t = std::time::Instant::now();
    match braid::demo::maildir::generate(std::path::Path::new(dir), n) {
        Ok(bytes) => {
            println!(
                "gen_maildir: {n} messages ({:.1} MB) in {dir} in {:.1} s",
                bytes as f64 / 1e6,
                t.elapsed().as_secs_f64()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_maildir: {dir}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
