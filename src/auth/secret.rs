//! The JWT signing secret: `MYCRM_JWT_SECRET`, or one generated once and kept in the data dir so
//! that restarts keep sessions valid.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context};

pub const MIN_SECRET_BYTES: usize = 32;
const SECRET_FILE: &str = "jwt-secret";

pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        if secret.len() < MIN_SECRET_BYTES {
            bail!("MYCRM_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long");
        }
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(SECRET_FILE);
    if let Ok(existing) = fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= MIN_SECRET_BYTES {
            return Ok(existing.as_bytes().to_vec());
        }
        bail!(
            "{} is shorter than {MIN_SECRET_BYTES} bytes; delete it to generate a new one",
            path.display()
        );
    }
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let secret = super::tokens::random_token(48);
    // Readable by us only; create_new so that two first starts never overwrite each other.
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())?;
            tracing::info!(path = %path.display(), "generated a JWT signing secret");
            Ok(secret.into_bytes())
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(fs::read_to_string(&path)?.trim().as_bytes().to_vec())
        }
        Err(err) => Err(err).with_context(|| format!("writing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_and_generated_ones_kept() {
        let dir = std::env::temp_dir().join(format!("mycrm-secret-{}", std::process::id()));
        assert!(load_or_create(Some("too-short"), &dir).is_err());
        let first = load_or_create(None, &dir).unwrap();
        assert!(first.len() >= MIN_SECRET_BYTES);
        assert_eq!(load_or_create(None, &dir).unwrap(), first);
        fs::remove_dir_all(&dir).unwrap();
    }
}
