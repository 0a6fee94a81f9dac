module github.com/seed-544bbf9f/comet/examples/cluster

go 1.26.0

replace github.com/seed-544bbf9f/comet => ../../

replace github.com/seed-544bbf9f/comet/redis => ../../redis

require (
	github.com/seed-544bbf9f/comet v0.0.0-00010101000000-000000000000
	github.com/seed-544bbf9f/comet/redis v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
