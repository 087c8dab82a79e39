//! Writing a state file so that a crash leaves either the old or the new content, never a torn
//! one (the drain state and the setup state both go through here).

use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` through a temporary file and a rename, creating the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
