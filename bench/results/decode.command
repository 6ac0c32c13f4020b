cargo bench --workspace --bench decode -- --warm-up-time 1 --measurement-time 3
