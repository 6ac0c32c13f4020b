$CARGO_TARGET_DIR/release/examples/bench_poll 20000
