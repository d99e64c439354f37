//! The conformance suite against real RocksDB files and a real PostgreSQL server
//! (each PostgreSQL upsert statement shape included, not only the default).

mod rocksdb {
    augur_adapters::conformance_tests!(augur_adapters::testing::RocksDbTarget);
}

mod postgres {
    augur_adapters::conformance_tests!(augur_adapters::testing::PostgresTarget::new());
}

mod postgres_unnest {
    augur_adapters::conformance_tests!(augur_adapters::testing::PostgresTarget::with_method(
        augur_adapters::UpsertMethod::Unnest
    ));
}

mod postgres_values {
    augur_adapters::conformance_tests!(augur_adapters::testing::PostgresTarget::with_method(
        augur_adapters::UpsertMethod::Values
    ));
}

mod postgres_copy {
    augur_adapters::conformance_tests!(augur_adapters::testing::PostgresTarget::with_method(
        augur_adapters::UpsertMethod::Copy
    ));
}
