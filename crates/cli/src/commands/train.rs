use anyhow::Result;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: Args) -> Result<()> {
    let cfg = args.config.load()?;
    let summary = rpo_train::train(&cfg)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
