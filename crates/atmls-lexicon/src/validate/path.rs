//! Data paths, built on the stack and rendered only for errors.

use std::fmt;

/// Where a value sits in the data being validated: `record/embed/images/0`.
#[derive(Clone, Copy)]
pub(crate) enum DataPath<'a> {
    Root(&'a str),
    Key(&'a DataPath<'a>, &'a str),
    Index(&'a DataPath<'a>, usize),
}

impl<'a> DataPath<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> DataPath<'a> {
        DataPath::Key(self, key)
    }

    pub(crate) fn index(&'a self, i: usize) -> DataPath<'a> {
        DataPath::Index(self, i)
    }

    pub(crate) fn depth(&self) -> usize {
        match self {
            DataPath::Root(_) => 0,
            DataPath::Key(p, _) | DataPath::Index(p, _) => p.depth() + 1,
        }
    }
}

impl fmt::Display for DataPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataPath::Root(s) => f.write_str(s),
            DataPath::Key(p, k) => write!(f, "{p}/{k}"),
            DataPath::Index(p, i) => write!(f, "{p}/{i}"),
        }
    }
}
