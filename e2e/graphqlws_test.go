package e2e

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/seed-544bbf9f/comet/session"
	"github.com/seed-544bbf9f/comet/transport"
)

// A server of the GraphQL over WebSocket protocol (graphql-transport-ws,
// the one graphql-ws speaks) over Comet sessions, for the graphql-ws case
// (libs_graphqlws_test.go). Its schema is two fields, matched by name
// rather than parsed: the subscription ticks, which sends 0 when it starts
// and then one more with every echo, and the query echo(text), which
// answers its text. Messages outside the protocol close the session with
// the protocol's codes.

// graphqlSubprotocol is the subprotocol graphql-ws asks for.
const graphqlSubprotocol = "graphql-transport-ws"

// gqlMessage is one message of the protocol.
type gqlMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// gqlServer is the server.
type gqlServer struct {
	s        *libServer
	cutAfter int // cut every connection once, after this many echoes
	cutOnce  sync.Once
	// ended gets what each session saw as it ends; it has room for more
	// sessions than a case makes, so that a surplus one, which the checks
	// report, cannot block the handler's shutdown.
	ended chan gqlEnd
}

// gqlEnd is what the server saw of one session.
type gqlEnd struct {
	protocol  string   // the session's subprotocol
	types     []string // the type of every client message, in order
	echoes    []string // the texts echoed, in order
	completed []string // the operations the client completed
	ticks     string   // the id of the ticks subscription
	pongs     int
	err       error // how Recv ended
}

func newGQLServer(cutAfter int) *gqlServer {
	return &gqlServer{cutAfter: cutAfter, ended: make(chan gqlEnd, 8)}
}

func (g *gqlServer) serve(sess *session.Session) {
	e := gqlEnd{protocol: sess.Protocol()}
	defer func() { g.ended <- e }()
	ctx := sess.Context()
	send := func(m gqlMessage) {
		b, _ := json.Marshal(m)
		if err := sess.Send(ctx, transport.Text, b); err != nil {
			g.s.log.Error("e2e: GraphQL send", "type", m.Type, "err", err)
		}
	}
	if e.protocol != graphqlSubprotocol {
		sess.Close(4406, "Subprotocol not acceptable")
	}
	var (
		acked bool
		ops   = map[string]bool{} // the operations running
		ticks int
	)
	for {
		typ, p, err := sess.Recv(ctx)
		if err != nil {
			e.err = err
			return
		}
		var m gqlMessage
		if typ != transport.Text || json.Unmarshal(p, &m) != nil || m.Type == "" {
			sess.Close(4400, "Invalid message received")
			continue
		}
		e.types = append(e.types, m.Type)
		switch m.Type {
		case "connection_init":
			if acked {
				sess.Close(4429, "Too many initialisation requests")
				continue
			}
			acked = true
			send(gqlMessage{Type: "connection_ack"})
			send(gqlMessage{Type: "ping"})
		case "ping":
			send(gqlMessage{Type: "pong"})
		case "pong":
			e.pongs++
		case "subscribe":
			if !acked {
				sess.Close(4401, "Unauthorized")
				continue
			}
			if m.ID == "" {
				sess.Close(4400, "Invalid message received")
				continue
			}
			if ops[m.ID] {
				sess.Close(4409, "Subscriber for "+m.ID+" already exists")
				continue
			}
			var req struct {
				Query     string         `json:"query"`
				Variables map[string]any `json:"variables"`
			}
			json.Unmarshal(m.Payload, &req)
			switch {
			case strings.HasPrefix(req.Query, "subscription") && strings.Contains(req.Query, "ticks"):
				ops[m.ID] = true
				e.ticks = m.ID
				send(gqlNext(m.ID, "ticks", 0))
			case strings.Contains(req.Query, "echo("):
				text, _ := req.Variables["text"].(string)
				e.echoes = append(e.echoes, text)
				send(gqlNext(m.ID, "echo", text))
				send(gqlMessage{Type: "complete", ID: m.ID})
				if ops[e.ticks] {
					ticks++
					send(gqlNext(e.ticks, "ticks", ticks))
				}
				if len(e.echoes) == g.cutAfter {
					g.s.cut(&g.cutOnce)
				}
			default:
				payload, _ := json.Marshal([]map[string]string{{"message": "this server knows only ticks and echo(text)"}})
				send(gqlMessage{Type: "error", ID: m.ID, Payload: payload})
			}
		case "complete":
			delete(ops, m.ID)
			e.completed = append(e.completed, m.ID)
		default:
			sess.Close(4400, "Invalid message received")
		}
	}
}

// gqlNext is a next message whose result is {"data": {field: value}}.
func gqlNext(id, field string, value any) gqlMessage {
	b, _ := json.Marshal(map[string]any{"data": map[string]any{field: value}})
	return gqlMessage{Type: "next", ID: id, Payload: b}
}
