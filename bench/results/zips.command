cargo lambda build --release --arm64 --output-format zip --bin webhook --bin poller
