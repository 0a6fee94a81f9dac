module github.com/seed-544bbf9f/comet

go 1.26

require (
	github.com/google/uuid v1.6.0
	github.com/gorilla/mux v1.8.1
	github.com/gorilla/websocket v1.5.3
)
