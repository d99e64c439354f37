//! The conformance suite against real RocksDB files and a real PostgreSQL server.

mod rocksdb {
    augur_adapters::conformance_tests!(augur_adapters::testing::RocksDbTarget);
}

mod postgres {
    augur_adapters::conformance_tests!(augur_adapters::testing::PostgresTarget::new());
}
