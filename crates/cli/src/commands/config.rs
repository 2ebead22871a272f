use anyhow::Result;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Prints the validated config with every default filled in: the exact run `train` would do.
pub fn run(args: Args) -> Result<()> {
    print!("{}", toml::to_string(&args.config.load()?)?);
    Ok(())
}
