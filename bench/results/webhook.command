bash scripts/bench-webhook.sh bench/results/webhook/webhook.json
