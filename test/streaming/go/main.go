// Command spdyclient is a test client for corral's streaming server built on moby/spdystream, the
// SPDY library under client-go's remotecommand and portforward (what kubelet and crictl use). It
// reproduces client-go's wire behaviour: HTTP upgrade with X-Stream-Protocol-Version, the exec v4
// stream set (error, stdin, stdout, stderr, resize), stdin half-close, JSON resize messages,
// port-forward error/data stream pairs keyed by requestID, pings, and client-go's close sequence
// (reset open streams, GOAWAY, TCP close). Results are printed as JSON on stdout.
//
// Built in GOPATH mode from Debian's golang-github-docker-spdystream-dev sources (no network):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o spdyclient ./test/streaming/go
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

type client struct {
	conn     *spdystream.Connection
	raw      net.Conn
	protocol string
	mu       sync.Mutex
	streams  []*spdystream.Stream
}

func dial(rawurl string, protocols []string) (*client, error) {
	u, err := url.Parse(rawurl)
	if err != nil {
		return nil, err
	}
	raw, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequest("POST", rawurl, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	for _, p := range protocols {
		req.Header.Add("X-Stream-Protocol-Version", p)
	}
	if err := req.Write(raw); err != nil {
		return nil, err
	}
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("upgrade failed: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	conn, err := spdystream.NewConnection(&bufConn{raw, br}, false)
	if err != nil {
		return nil, err
	}
	// client-go refuses server-initiated streams
	go conn.Serve(func(s *spdystream.Stream) { s.Refuse() })
	return &client{conn: conn, raw: raw, protocol: resp.Header.Get("X-Stream-Protocol-Version")}, nil
}

func (c *client) create(h http.Header) (*spdystream.Stream, error) {
	s, err := c.conn.CreateStream(h, nil, false)
	if err != nil {
		return nil, err
	}
	if err := s.WaitTimeout(10 * time.Second); err != nil {
		return nil, fmt.Errorf("waiting for reply to %v: %w", h, err)
	}
	c.mu.Lock()
	c.streams = append(c.streams, s)
	c.mu.Unlock()
	return s, nil
}

// close follows client-go's httpstream/spdy connection Close: reset streams, GOAWAY, close TCP.
func (c *client) close() {
	c.mu.Lock()
	for _, s := range c.streams {
		s.Reset()
	}
	c.mu.Unlock()
	c.conn.Close()
	c.raw.Close()
}

type execResult struct {
	Protocol   string          `json:"protocol"`
	Stdout     string          `json:"stdout"`
	Stderr     string          `json:"stderr"`
	StdoutSHA  string          `json:"stdoutSha256"`
	StdoutLen  int             `json:"stdoutLen"`
	Error      string          `json:"error"`
	Status     json.RawMessage `json:"status,omitempty"`
	PingMillis int64           `json:"pingMillis"`
}

func runExec(rawurl string, stdinData []byte, hasStdin, tty bool, resizes []string, stderr bool) (*execResult, error) {
	c, err := dial(rawurl, []string{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"})
	if err != nil {
		return nil, err
	}
	defer c.close()
	rtt, err := c.conn.Ping()
	if err != nil {
		return nil, fmt.Errorf("ping: %w", err)
	}
	h := http.Header{}
	h.Set("streamType", "error")
	errStream, err := c.create(h)
	if err != nil {
		return nil, err
	}
	errCh := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(errStream)
		errCh <- b
	}()
	var stdinStream, stdoutStream, stderrStream, resizeStream *spdystream.Stream
	if hasStdin {
		h.Set("streamType", "stdin")
		if stdinStream, err = c.create(h); err != nil {
			return nil, err
		}
	}
	h.Set("streamType", "stdout")
	if stdoutStream, err = c.create(h); err != nil {
		return nil, err
	}
	if stderr && !tty {
		h.Set("streamType", "stderr")
		if stderrStream, err = c.create(h); err != nil {
			return nil, err
		}
	}
	if tty {
		h.Set("streamType", "resize")
		if resizeStream, err = c.create(h); err != nil {
			return nil, err
		}
		go func() {
			for _, r := range resizes {
				parts := strings.Split(r, "x")
				w, _ := strconv.Atoi(parts[0])
				hh, _ := strconv.Atoi(parts[1])
				json.NewEncoder(resizeStream).Encode(struct{ Width, Height uint16 }{uint16(w), uint16(hh)})
			}
		}()
	}
	if stdinStream != nil {
		go func() {
			stdinStream.Write(stdinData)
			stdinStream.Close()
		}()
	}
	var wg sync.WaitGroup
	var out, errOut []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, _ = io.ReadAll(stdoutStream)
	}()
	if stderrStream != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errOut, _ = io.ReadAll(stderrStream)
		}()
	}
	wg.Wait()
	var errBytes []byte
	select {
	case errBytes = <-errCh:
	case <-time.After(10 * time.Second):
		return nil, errors.New("timed out reading the error stream")
	}
	sum := sha256.Sum256(out)
	res := &execResult{Protocol: c.protocol, Stdout: trunc(out), Stderr: trunc(errOut), StdoutSHA: hex.EncodeToString(sum[:]), StdoutLen: len(out), Error: string(errBytes), PingMillis: rtt.Milliseconds()}
	if c.protocol == "v4.channel.k8s.io" && len(errBytes) > 0 {
		res.Status = json.RawMessage(errBytes)
	}
	return res, nil
}

func trunc(b []byte) string {
	if len(b) > 4096 {
		return string(b[:4096])
	}
	return string(b)
}

type pfResult struct {
	Replies []string `json:"replies"`
	Errors  []string `json:"errors"`
}

func runPortForward(rawurl string, port, n int) (*pfResult, error) {
	c, err := dial(rawurl, []string{"portforward.k8s.io"})
	if err != nil {
		return nil, err
	}
	defer c.close()
	res := &pfResult{Replies: make([]string, n), Errors: make([]string, n)}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h := http.Header{}
			h.Set("streamType", "error")
			h.Set("port", strconv.Itoa(port))
			h.Set("requestID", strconv.Itoa(i))
			es, err := c.create(h)
			if err != nil {
				errs <- err
				return
			}
			es.Close() // client-go: "we're not writing to this stream"
			errDone := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(es)
				errDone <- b
			}()
			h.Set("streamType", "data")
			ds, err := c.create(h)
			if err != nil {
				errs <- err
				return
			}
			payload := strings.Repeat(fmt.Sprintf("conn-%d;", i), 1000)
			go func() {
				ds.Write([]byte(payload))
				ds.Close()
			}()
			reply, _ := io.ReadAll(ds)
			res.Replies[i] = string(reply)
			res.Errors[i] = string(<-errDone)
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		return nil, e
	}
	return res, nil
}

func main() {
	mode := flag.String("mode", "exec", "exec or portforward")
	rawurl := flag.String("url", "", "streaming URL")
	stdin := flag.String("stdin", "", "stdin data (exec)")
	stdinBytes := flag.Int("stdin-bytes", 0, "send this many pseudo-random bytes as stdin instead")
	noStdin := flag.Bool("no-stdin", false, "do not open a stdin stream")
	tty := flag.Bool("tty", false, "tty exec")
	stderr := flag.Bool("stderr", true, "open a stderr stream")
	resize := flag.String("resize", "", "comma-separated WxH sizes to send (tty)")
	port := flag.Int("port", 0, "port (portforward)")
	n := flag.Int("n", 1, "parallel connections (portforward)")
	flag.Parse()
	var out interface{}
	var err error
	switch *mode {
	case "exec":
		data := []byte(*stdin)
		if *stdinBytes > 0 {
			data = make([]byte, *stdinBytes)
			x := uint32(2463534242)
			for i := range data {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				data[i] = byte(x)
			}
		}
		var sizes []string
		if *resize != "" {
			sizes = strings.Split(*resize, ",")
		}
		out, err = runExec(*rawurl, data, !*noStdin, *tty, sizes, *stderr)
	case "portforward":
		out, err = runPortForward(*rawurl, *port, *n)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
