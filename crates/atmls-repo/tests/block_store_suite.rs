//! The block-store contract (`atmls_testkit::block_store`) on the memory and SQLite stores.

mod memory {
    atmls_testkit::block_store_suite!((atmls_repo::MemoryBlockStore::new(), ()));
}

#[cfg(feature = "sqlite")]
mod sqlite {
    atmls_testkit::block_store_suite!({
        let dir = tempfile::tempdir().unwrap();
        let store = atmls_repo::SqliteBlockStore::open(
            dir.path().join("repos.sqlite"),
            &atmls_repo::SqliteConfig::default(),
        )
        .unwrap();
        (store, dir)
    });
}
