.venv-bench/bin/python scripts/bench_instructions.py $CARGO_TARGET_DIR/release/examples/decode_instructions
