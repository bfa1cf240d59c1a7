pub mod acking_test_server;
