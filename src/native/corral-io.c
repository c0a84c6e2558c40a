/*
 * corral-io: the few stdio relays corral's streaming backends need and Node.js cannot do itself
 * (SOCK_SEQPACKET sockets, receiving a pty over SCM_RIGHTS, entering a network namespace).
 * One short-lived process per session (per connection for port-forward); no dependencies beyond libc.
 *
 *   corral-io attach [--stdin] [--stdout] [--stderr] <attach-socket>
 *       Connects to conmon's attach socket. fd 0 → socket; socket packets (first byte names the pipe:
 *       2 stdout, 3 stderr) → fd 1 / fd 3. stdin EOF → shutdown(SHUT_WR) (conmon then closes the
 *       container's stdin if it runs with stdin_once). Output the daemon does not drain in time is
 *       dropped past a bound, so a stalled client never blocks conmon (and with it the container).
 *       Exits 0 when conmon closes the socket (the container exited).
 *   corral-io exec --pid-file <file> [--console-socket <path>] -- runc ... exec -d --pid-file <file> ...
 *       Runs the detached `runc exec` and adopts the exec'd process as child subreaper. Without
 *       --console-socket the process inherits fds 0-2 (no copying). With it: listens on <path>,
 *       receives the pty master runc sends, relays fd 0 → pty → fd 1 and applies "W H\n" lines read
 *       from fd 3 as window sizes. Exits with the process's status (128+n for a signal), or runc's when
 *       it failed to start it. SIGTERM/SIGINT/SIGHUP, or the daemon's death, kill the exec'd process.
 *   corral-io portforward <netns-path> <port>
 *       Enters the network namespace, connects to 127.0.0.1:<port> (then [::1]), relays fd 0/1 with
 *       half-close. Exits 1 with a message on stderr when the dial fails.
 *
 * Helper failures exit 125 with "corral-io: ..." on stderr. If CORRAL_IO_PPID is set and is not our
 * parent any more (the daemon died before prctl), the helper exits at once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_HELPER 125
#define PIPE_STDOUT 2 /* conmon's stdpipe_t */
#define PIPE_STDERR 3
#define STREAM_RING (64 * 1024)
#define ATTACH_RING (1024 * 1024)
#define PACKET_MAX (64 * 1024)
#define DRAIN_MS 2000

static void kill_exec(void);
static pid_t g_runc = -1;

static void fail(const char *fmt, ...)
{
	if (g_runc > 0)
		kill_exec();
	va_list ap;
	va_start(ap, fmt);
	fputs("corral-io: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(EXIT_HELPER);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* Die with the daemon: deathsig on parent exit, and exit now if the parent is already gone. */
static void guard_parent(int deathsig)
{
	if (prctl(PR_SET_PDEATHSIG, deathsig) != 0)
		fail("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
	const char *pp = getenv("CORRAL_IO_PPID");
	if (pp && *pp && getppid() != (pid_t)atol(pp))
		exit(EXIT_HELPER);
	signal(SIGPIPE, SIG_IGN);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- byte rings and pumps ------------------------------------------------------------------------ */

struct ring {
	char *data;
	size_t cap, head, len;
};

static void ring_init(struct ring *r, size_t cap)
{
	r->data = malloc(cap);
	if (!r->data)
		fail("out of memory");
	r->cap = cap;
	r->head = r->len = 0;
}

static size_t ring_room(const struct ring *r) { return r->cap - r->len; }

static void ring_put(struct ring *r, const char *p, size_t n)
{
	size_t tail = (r->head + r->len) % r->cap;
	size_t first = n < r->cap - tail ? n : r->cap - tail;
	memcpy(r->data + tail, p, first);
	memcpy(r->data, p + first, n - first);
	r->len += n;
}

enum pump_kind { P_STREAM, P_DEMUX };
enum pump_end { E_NONE, E_SHUT, E_CLOSE };

/*
 * Moves bytes from `in` to `out` (P_DEMUX: conmon packets to out[0]=stdout / out[1]=stderr).
 * Reads only while there is room (backpressure), except with `drop` set: then it always reads and
 * drops what does not fit. When input ended and everything is written, `end` is applied to the outputs.
 */
struct pump {
	enum pump_kind kind;
	enum pump_end end;
	int in;
	int out[2];
	struct ring r[2];
	bool drop;
	bool in_eof, done;
	size_t max_write;
	unsigned long long dropped;
};

static void pump_init(struct pump *p, enum pump_kind kind, int in, int out0, int out1, size_t cap, enum pump_end end)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->in = in;
	p->out[0] = out0;
	p->out[1] = out1;
	p->end = end;
	p->max_write = (size_t)-1;
	ring_init(&p->r[0], cap);
	if (kind == P_DEMUX)
		ring_init(&p->r[1], cap);
}

static bool pump_empty(const struct pump *p) { return p->r[0].len == 0 && (p->kind != P_DEMUX || p->r[1].len == 0); }

static void pump_finish(struct pump *p)
{
	if (p->done)
		return;
	p->done = true;
	for (int i = 0; i < 2; i++) {
		if (p->out[i] < 0)
			continue;
		if (p->end == E_SHUT)
			shutdown(p->out[i], SHUT_WR);
		else if (p->end == E_CLOSE)
			close(p->out[i]);
		if (p->end == E_CLOSE)
			p->out[i] = -1;
	}
}

/* The poll entries of a pump: slot 0 its input, slots 1-2 its outputs (fd -1 = not interested). */
static void pump_events(const struct pump *p, struct pollfd *pf)
{
	pf[0].fd = pf[1].fd = pf[2].fd = -1;
	pf[0].revents = pf[1].revents = pf[2].revents = 0;
	if (p->done)
		return;
	size_t want = p->kind == P_DEMUX ? PACKET_MAX : 1;
	bool room = p->drop || (ring_room(&p->r[0]) >= want && (p->kind != P_DEMUX || ring_room(&p->r[1]) >= want));
	if (!p->in_eof && room) {
		pf[0].fd = p->in;
		pf[0].events = POLLIN;
	}
	for (int i = 0; i < (p->kind == P_DEMUX ? 2 : 1); i++) {
		if (p->r[i].len > 0 && p->out[i] >= 0) {
			pf[1 + i].fd = p->out[i];
			pf[1 + i].events = POLLOUT;
		}
	}
}

static void pump_read(struct pump *p)
{
	static char buf[PACKET_MAX];
	ssize_t n;
	if (p->kind == P_DEMUX) {
		n = recv(p->in, buf, sizeof(buf), 0);
	} else {
		size_t want = ring_room(&p->r[0]);
		if (want > sizeof(buf))
			want = sizeof(buf);
		n = read(p->in, buf, want);
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* EOF, or EIO from a pty whose last slave closed */
		p->in_eof = true;
		return;
	}
	const char *data = buf;
	size_t len = (size_t)n;
	int slot = 0;
	if (p->kind == P_DEMUX) {
		if (buf[0] == PIPE_STDOUT)
			slot = 0;
		else if (buf[0] == PIPE_STDERR)
			slot = 1;
		else
			return;
		data++;
		len--;
	}
	if (p->out[slot] < 0 || len == 0)
		return; /* stream not requested */
	if (ring_room(&p->r[slot]) < len) {
		p->dropped += len;
		return;
	}
	ring_put(&p->r[slot], data, len);
}

static void pump_write(struct pump *p, int slot)
{
	struct ring *r = &p->r[slot];
	size_t n = r->len < r->cap - r->head ? r->len : r->cap - r->head;
	if (n > p->max_write)
		n = p->max_write;
	ssize_t w = write(p->out[slot], r->data + r->head, n);
	if (w < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		/* The reader is gone: nothing more can be delivered this way. */
		r->len = 0;
		r->head = 0;
		p->in_eof = true;
		if (p->end == E_CLOSE)
			close(p->out[slot]);
		p->out[slot] = -1;
		return;
	}
	r->head = (r->head + (size_t)w) % r->cap;
	r->len -= (size_t)w;
}

static void pump_handle(struct pump *p, const struct pollfd *pf)
{
	if (p->done)
		return;
	if (pf[0].fd >= 0 && pf[0].revents)
		pump_read(p);
	for (int i = 0; i < 2; i++)
		if (pf[1 + i].fd >= 0 && pf[1 + i].revents)
			pump_write(p, i);
	if (p->in_eof && pump_empty(p))
		pump_finish(p);
}

/* ---- attach -------------------------------------------------------------------------------------- */

/* Connects to a unix socket by a path of any length (through /proc/self/fd of its directory, like cri-o). */
static int connect_unix(const char *path, int type)
{
	char *dir = strdup(path);
	if (!dir)
		fail("out of memory");
	char *slash = strrchr(dir, '/');
	const char *base = path;
	int dfd = AT_FDCWD;
	if (slash) {
		*slash = '\0';
		base = path + (slash - dir) + 1;
		dfd = open(*dir ? dir : "/", O_PATH | O_CLOEXEC);
		if (dfd < 0)
			fail("open %s: %s", *dir ? dir : "/", strerror(errno));
	}
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (dfd == AT_FDCWD)
		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", base);
	else
		snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dfd, base);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		fail("connect %s: %s", path, strerror(errno));
	if (dfd != AT_FDCWD)
		close(dfd);
	free(dir);
	return fd;
}

static int cmd_attach(int argc, char **argv)
{
	bool want_in = false, want_out = false, want_err = false;
	const char *path = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--stdin"))
			want_in = true;
		else if (!strcmp(argv[i], "--stdout"))
			want_out = true;
		else if (!strcmp(argv[i], "--stderr"))
			want_err = true;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			fail("attach: unexpected argument %s", argv[i]);
	}
	if (!path)
		fail("usage: corral-io attach [--stdin] [--stdout] [--stderr] <attach-socket>");
	guard_parent(SIGKILL);
	int sock = connect_unix(path, SOCK_SEQPACKET);
	set_nonblock(sock);
	int out = want_out ? 1 : -1, err = -1;
	if (want_err) {
		struct stat st;
		if (fstat(3, &st) < 0)
			fail("attach --stderr needs fd 3");
		err = 3;
	}
	if (out >= 0)
		set_nonblock(out);
	if (err >= 0)
		set_nonblock(err);

	struct pump in, outp;
	/* Packets of at most 8 KiB: conmon reads up to 32 KiB per packet. */
	pump_init(&in, P_STREAM, 0, sock, -1, STREAM_RING, E_SHUT);
	in.max_write = 8192;
	in.done = !want_in; /* without stdin never half-close: conmon would close a stdin_once container's stdin */
	if (want_in)
		set_nonblock(0);
	pump_init(&outp, P_DEMUX, sock, out, err, ATTACH_RING, E_CLOSE);
	outp.drop = true;

	while (!outp.done) {
		struct pollfd pf[6];
		pump_events(&in, pf);
		pump_events(&outp, pf + 3);
		if (poll(pf, 6, -1) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		pump_handle(&in, pf);
		pump_handle(&outp, pf + 3);
	}
	if (outp.dropped)
		fprintf(stderr, "corral-io: dropped %llu bytes of output the client did not read in time\n", outp.dropped);
	return 0;
}

/* ---- exec ---------------------------------------------------------------------------------------- */

static const char *g_pid_file;
static const char *g_console_path;
static pid_t g_exec_pid = -1;

static pid_t read_pid_file(void)
{
	FILE *f = fopen(g_pid_file, "r");
	long pid = 0;
	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid > 1 ? (pid_t)pid : -1;
}

static void kill_exec(void)
{
	pid_t pid = g_exec_pid > 0 ? g_exec_pid : (g_pid_file ? read_pid_file() : -1);
	if (pid > 0)
		kill(pid, SIGKILL);
	if (g_runc > 0)
		kill(g_runc, SIGKILL);
	if (g_console_path)
		unlink(g_console_path);
}

/*
 * Session over (SIGTERM from the daemon, or its death): kill the exec'd process and reap it. runc may still
 * be starting it, with no pid file yet: give runc a moment to finish (with -d it exits once the process
 * runs), so the process is not left behind unknown.
 */
static void terminate(int sig)
{
	for (int i = 0; i < 250 && g_runc > 0; i++) {
		int st;
		if (waitpid(g_runc, &st, WNOHANG) == g_runc)
			g_runc = -1;
		else
			usleep(20000);
	}
	if (g_exec_pid < 0 && g_pid_file)
		g_exec_pid = read_pid_file();
	kill_exec();
	for (int i = 0; i < 100 && g_exec_pid > 0; i++) {
		pid_t p = waitpid(g_exec_pid, NULL, WNOHANG);
		if (p == g_exec_pid || (p < 0 && errno == ECHILD))
			break;
		usleep(10000);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	exit(128 + sig);
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_HELPER;
}

/* Receives the pty master runc sends over the console socket (SCM_RIGHTS). */
static int recv_fd(int conn)
{
	char name[4096];
	struct iovec iov = {.iov_base = name, .iov_len = sizeof(name)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	do {
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		fail("recvmsg on console socket: %s", strerror(errno));
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		fail("console socket: no file descriptor received");
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static void apply_winsize(int master, unsigned w, unsigned h)
{
	struct winsize ws = {.ws_row = (unsigned short)h, .ws_col = (unsigned short)w};
	if (master >= 0 && w > 0 && h > 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

/* Accepts runc's console connection (non-blocking listener); the master fd or -1 if none is queued. */
static int take_console(int *lsock)
{
	int conn = accept4(*lsock, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return -1;
	int master = recv_fd(conn);
	close(conn);
	close(*lsock);
	*lsock = -1;
	unlink(g_console_path);
	set_nonblock(master);
	return master;
}

/* Applies complete "W H\n" lines from the resize fd; returns false when the fd ended. */
static bool read_resizes(int fd, char *buf, size_t cap, size_t *len, int master, unsigned *pw, unsigned *ph)
{
	ssize_t r = read(fd, buf + *len, cap - 1 - *len);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR;
	if (r == 0)
		return false;
	*len += (size_t)r;
	buf[*len] = '\0';
	char *line = buf, *nl;
	while ((nl = strchr(line, '\n'))) {
		*nl = '\0';
		unsigned w, h;
		if (sscanf(line, "%u %u", &w, &h) == 2) {
			*pw = w;
			*ph = h;
			apply_winsize(master, w, h);
		}
		line = nl + 1;
	}
	*len = strlen(line);
	memmove(buf, line, *len);
	if (*len >= cap - 1)
		*len = 0;
	return true;
}

/*
 * The runtime argv must start the process detached (`runc exec -d --pid-file <file> ...`): runc exits once
 * the process runs, and the process, orphaned, comes to us as child subreaper. So a session costs this
 * small process only, not a runc process for its whole life, and we reap the exec'd process ourselves.
 */
static int cmd_exec(int argc, char **argv)
{
	int i = 0;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--pid-file") && i + 1 < argc)
			g_pid_file = argv[++i];
		else if (!strcmp(argv[i], "--console-socket") && i + 1 < argc)
			g_console_path = argv[++i];
		else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else
			fail("exec: unexpected argument %s", argv[i]);
	}
	if (!g_pid_file || i >= argc)
		fail("usage: corral-io exec --pid-file <file> [--console-socket <path>] -- <runtime argv...>");
	char **rargv = argv + i;
	bool tty = g_console_path != NULL;

	/* SIGTERM on the daemon's death: the handler below kills the exec'd process, not just us. */
	guard_parent(SIGTERM);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		fail("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fail("signalfd: %s", strerror(errno));

	int lsock = -1;
	if (tty) {
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		if (strlen(g_console_path) >= sizeof(addr.sun_path))
			fail("console socket path too long: %s", g_console_path);
		strcpy(addr.sun_path, g_console_path);
		lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (lsock < 0)
			fail("socket: %s", strerror(errno));
		unlink(g_console_path);
		if (bind(lsock, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			fail("bind %s: %s", g_console_path, strerror(errno));
		chmod(g_console_path, 0600);
		if (listen(lsock, 1) < 0)
			fail("listen: %s", strerror(errno));
		set_cloexec(3);
	}

	g_runc = fork();
	if (g_runc < 0)
		fail("fork: %s", strerror(errno));
	if (g_runc == 0) {
		sigprocmask(SIG_UNBLOCK, &mask, NULL);
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (tty) {
			/* The process talks to the pty; runc's own stdio only carries its error messages (fd 2). */
			int null = open("/dev/null", O_RDWR);
			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
			}
		}
		execvp(rargv[0], rargv);
		fprintf(stderr, "corral-io: exec %s: %s\n", rargv[0], strerror(errno));
		_exit(127);
	}
	if (!tty) {
		/* The exec'd process owns the pipes: do not hold them open behind its back. */
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			close(null);
		}
	}

	int master = -1, exec_status = 0;
	bool exec_done = false;
	long long drain_deadline = 0;
	unsigned pend_w = 0, pend_h = 0;
	char rbuf[256];
	size_t rlen = 0;
	int resize_fd = -1;
	struct pump in, out;
	if (tty) {
		struct stat st;
		if (fstat(3, &st) == 0) {
			resize_fd = 3;
			set_nonblock(3);
		}
		set_nonblock(0);
		set_nonblock(1);
		pump_init(&in, P_STREAM, 0, -1, -1, STREAM_RING, E_NONE);
		pump_init(&out, P_STREAM, -1, 1, -1, STREAM_RING, E_CLOSE);
		in.done = out.done = true; /* until the master arrives */
	}

	for (;;) {
		if (exec_done && (!tty || master < 0 || out.done || now_ms() >= drain_deadline))
			break;
		struct pollfd pf[9];
		pf[0].fd = sfd;
		pf[0].events = POLLIN;
		pf[1].fd = lsock;
		pf[1].events = POLLIN;
		pf[2].fd = resize_fd;
		pf[2].events = POLLIN;
		int n = 3;
		if (tty) {
			pump_events(&in, pf + 3);
			pump_events(&out, pf + 6);
			n = 9;
		}
		int timeout = -1;
		if (exec_done) {
			long long left = drain_deadline - now_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));

		if (lsock >= 0 && pf[1].revents) {
			master = take_console(&lsock);
			if (master >= 0) {
				apply_winsize(master, pend_w, pend_h);
				in.out[0] = master;
				in.done = false;
				out.in = master;
				out.done = false;
			}
		}
		if (resize_fd >= 0 && pf[2].revents && !read_resizes(resize_fd, rbuf, sizeof(rbuf), &rlen, master, &pend_w, &pend_h))
			resize_fd = -1;
		if (tty) {
			pump_handle(&in, pf + 3);
			pump_handle(&out, pf + 6);
			if (in.in_eof)
				in.done = true; /* a pty has no half-close: just stop feeding it */
		}
		if (!pf[0].revents)
			continue;
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGCHLD)
				terminate((int)si.ssi_signo);
		}
		/*
		 * Reap runc first: once it exited the process is our child too and may already be a zombie as
		 * well; its pid is only known from the pid file runc wrote.
		 */
		int st;
		if (g_runc > 0 && waitpid(g_runc, &st, WNOHANG) == g_runc) {
			g_runc = -1;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				/* The process never started; runc said why on fd 2. */
				if (g_console_path)
					unlink(g_console_path);
				return exit_code_of(st);
			}
			g_exec_pid = read_pid_file();
			if (g_exec_pid < 0)
				fail("runc exec succeeded but wrote no pid to %s", g_pid_file);
			if (tty && master < 0 && lsock >= 0) {
				/* The console runc sent may still be queued. */
				master = take_console(&lsock);
				if (master >= 0) {
					apply_winsize(master, pend_w, pend_h);
					in.out[0] = master;
					in.done = false;
					out.in = master;
					out.done = false;
				}
			}
		}
		if (g_runc > 0)
			continue;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == g_exec_pid) {
				exec_status = st;
				exec_done = true;
				g_exec_pid = -1;
				g_pid_file = NULL; /* reaped: its pid may be reused, never kill it again */
				drain_deadline = now_ms() + DRAIN_MS;
			}
			/* anything else: an orphan of a host-PID-namespace exec, adopted and reaped */
		}
	}
	if (g_console_path)
		unlink(g_console_path);
	return exit_code_of(exec_status);
}

/* ---- portforward --------------------------------------------------------------------------------- */

static int cmd_portforward(int argc, char **argv)
{
	if (argc != 2)
		fail("usage: corral-io portforward <netns-path> <port>");
	char *end;
	long port = strtol(argv[1], &end, 10);
	if (*end || port < 1 || port > 65535)
		fail("invalid port %s", argv[1]);
	guard_parent(SIGKILL);
	int nsfd = open(argv[0], O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		fail("open %s: %s", argv[0], strerror(errno));
	if (setns(nsfd, CLONE_NEWNET) < 0)
		fail("setns %s: %s", argv[0], strerror(errno));
	close(nsfd);

	int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int err4 = 0;
	if (sock < 0 || connect(sock, (struct sockaddr *)&a4, sizeof(a4)) < 0) {
		err4 = errno;
		if (sock >= 0)
			close(sock);
		sock = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		if (sock < 0 || connect(sock, (struct sockaddr *)&a6, sizeof(a6)) < 0) {
			fprintf(stderr, "failed to connect to localhost:%ld inside namespace %s: %s\n", port, argv[0], strerror(err4));
			return 1;
		}
	}
	set_nonblock(sock);
	set_nonblock(0);
	set_nonblock(1);
	struct pump up, down;
	pump_init(&up, P_STREAM, 0, sock, -1, STREAM_RING, E_SHUT);
	pump_init(&down, P_STREAM, sock, 1, -1, STREAM_RING, E_CLOSE);
	while (!up.done || !down.done) {
		struct pollfd pf[6];
		pump_events(&up, pf);
		pump_events(&down, pf + 3);
		if (poll(pf, 6, -1) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		pump_handle(&up, pf);
		pump_handle(&down, pf + 3);
		/* The peer reset the connection: nothing written upstream can arrive any more. */
		if (down.done && !up.done && up.out[0] < 0)
			break;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: corral-io attach|exec|portforward ...\n");
		return EXIT_HELPER;
	}
	if (!strcmp(argv[1], "attach"))
		return cmd_attach(argc - 2, argv + 2);
	if (!strcmp(argv[1], "exec"))
		return cmd_exec(argc - 2, argv + 2);
	if (!strcmp(argv[1], "portforward"))
		return cmd_portforward(argc - 2, argv + 2);
	fprintf(stderr, "corral-io: unknown command %s\n", argv[1]);
	return EXIT_HELPER;
}
