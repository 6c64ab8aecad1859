//! The open-file limit: read from `/proc/self/limits`, raised (soft limit only, up to the
//! hard limit) with the `prlimit` tool on this process, so no `unsafe` is needed here.

use std::process::Command;

use crate::LoadgenError;

/// The soft and hard `Max open files` of this process (`None`: unlimited).
pub fn open_files_limit() -> Result<(Option<u64>, Option<u64>), LoadgenError> {
    let text = std::fs::read_to_string("/proc/self/limits")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or_else(|| LoadgenError::FdLimit("no 'Max open files' in /proc/self/limits".into()))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let mut value = || match fields.next() {
        Some("unlimited") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| LoadgenError::FdLimit(format!("cannot read {line:?}"))),
        None => Err(LoadgenError::FdLimit(format!("cannot read {line:?}"))),
    };
    Ok((value()?, value()?))
}

/// Makes sure at least `need` files can be open: raises the soft limit if it is lower
/// (to `need`, or the hard limit if that is lower still), or fails saying how to run.
pub fn ensure_open_files(need: u64) -> Result<u64, LoadgenError> {
    let (soft, hard) = open_files_limit()?;
    let Some(soft) = soft else {
        return Ok(u64::MAX);
    };
    if soft >= need {
        return Ok(soft);
    }
    let want = hard.map_or(need, |h| h.min(need));
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={want}:"))
        .status();
    let (now, _) = open_files_limit()?;
    match now {
        None => Ok(u64::MAX),
        Some(n) if n >= need => Ok(n),
        Some(n) => Err(LoadgenError::FdLimit(format!(
            "{need} needed, soft limit {n} (hard {}); raising it with prlimit: {}",
            hard.map_or("unlimited".to_owned(), |h| h.to_string()),
            match status {
                Ok(s) if s.success() => "not enough".to_owned(),
                Ok(s) => format!("failed ({s})"),
                Err(e) => format!("not available ({e})"),
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_readable_and_small_needs_pass() {
        let (soft, _) = open_files_limit().expect("readable");
        assert!(soft.is_none_or(|s| s > 0));
        assert!(ensure_open_files(16).is_ok());
    }
}
