/*
 * corral-spawn: a small long-lived process that forks and execs the daemon's short-lived helpers
 * (runc, mount, CNI plugins, ...). The daemon is a large Node.js process whose fork() copies ~100+ MB
 * of page tables while its event loop waits; forking this ~1 MB process instead costs ~0.1 ms.
 * Started once by the daemon (src/sys/spawner.ts) with pipes on fds 0/1; dies with it (PDEATHSIG).
 *
 * Frames on fd 0 (requests) and fd 1 (responses), integers little-endian, `len` counts the bytes
 * after itself:
 *   request  u32 len, u32 id, u32 timeout ms (0 = none), u32 max output bytes per stream,
 *            file\0, cwd\0 ("" = inherit), u32 argc, argv[0]\0 ..., u32 envc, "K=V"\0 ...,
 *            u32 stdin length, stdin bytes
 *   cancel   u32 len = 4, u32 id                      SIGKILLs that request's child
 *   response u32 len, u32 id, i32 exit code (-1 when signalled), i32 signal, u8 kind
 *            (0 ok, 1 exec failed ENOENT, 2 exec failed otherwise, 3 timed out and killed),
 *            u32 errno, u32 stdout length, stdout, u32 stderr length, stderr (each cut at max)
 *
 * The response is sent once the child is reaped and its stdout/stderr reached EOF (like Node's
 * 'close'), or at once after reaping when it was killed for a timeout or cancel. Children get default
 * signal dispositions, an empty mask, the spawner's session and process group, no other fds, and
 * `file` is searched in the PATH of the request's environment (like libuv). On stdin EOF the
 * spawner finishes the children it has and exits. Protocol errors exit 2 with a message on stderr.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#define MAX_FRAME (1U << 30)
#define CHUNK 65536
#define DEF_PATH "/usr/bin:/bin"

enum { K_OK = 0, K_ENOENT = 1, K_EXEC = 2, K_TIMEOUT = 3 };

struct buf {
	char *p;
	size_t len, cap;
};

struct child {
	uint32_t id, max;
	pid_t pid;
	int in_fd, out_fd, err_fd, errp_fd; /* our ends, -1 once closed */
	char *in_alloc;                     /* owns the stdin bytes */
	const char *in;
	size_t in_len, in_off;
	struct buf out, err;
	long long deadline; /* ms, CLOCK_MONOTONIC; 0 = none */
	int reaped, status, killed, timed_out, exec_errno;
};

struct outmsg {
	struct outmsg *next;
	char *p;
	size_t len, off;
};

static struct child **kids;
static size_t nkids, capkids;
static struct outmsg *outq, *outq_tail;
static int in_eof, sfd;
static char rbuf[CHUNK];
static size_t rlen;
static char *big; /* a frame larger than rbuf, read in place */
static size_t big_len, big_have;

static void die(const char *what)
{
	fprintf(stderr, "corral-spawn: %s: %s\n", what, errno ? strerror(errno) : "protocol error");
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t get_u32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static char *put_u32(char *p, uint32_t v)
{
	p[0] = (char)v, p[1] = (char)(v >> 8), p[2] = (char)(v >> 16), p[3] = (char)(v >> 24);
	return p + 4;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void xclose(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- responses ---------------------------------------------------------------------------------- */

static void flush_out(void)
{
	while (outq) {
		struct outmsg *m = outq;
		ssize_t n = write(1, m->p + m->off, m->len - m->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			die("write responses"); /* the daemon is gone */
		}
		m->off += (size_t)n;
		if (m->off < m->len)
			continue;
		outq = m->next;
		if (!outq)
			outq_tail = NULL;
		free(m->p);
		free(m);
	}
}

static void respond(struct child *c, int kind)
{
	int code = -1, sig = 0;
	if (c->reaped && WIFEXITED(c->status))
		code = WEXITSTATUS(c->status);
	else if (c->reaped && WIFSIGNALED(c->status))
		sig = WTERMSIG(c->status);
	size_t len = 4 + 4 + 4 + 1 + 4 + 4 + c->out.len + 4 + c->err.len;
	struct outmsg *m = xmalloc(sizeof *m);
	char *p = m->p = xmalloc(4 + len);
	p = put_u32(p, (uint32_t)len);
	p = put_u32(p, c->id);
	p = put_u32(p, (uint32_t)code);
	p = put_u32(p, (uint32_t)sig);
	*p++ = (char)kind;
	p = put_u32(p, (uint32_t)c->exec_errno);
	p = put_u32(p, (uint32_t)c->out.len);
	if (c->out.len)
		memcpy(p, c->out.p, c->out.len);
	p = put_u32(p + c->out.len, (uint32_t)c->err.len);
	if (c->err.len)
		memcpy(p, c->err.p, c->err.len);
	m->len = 4 + len;
	m->off = 0;
	m->next = NULL;
	if (outq_tail)
		outq_tail->next = m;
	else
		outq = m;
	outq_tail = m;
	flush_out();
}

/* ---- children ----------------------------------------------------------------------------------- */

/* Reads what is there; bytes past `max` are read and dropped so the child never blocks on a full pipe. */
static void drain(int *fd, struct buf *b, uint32_t max)
{
	static char scratch[CHUNK];
	for (int i = 0; i < 16 && *fd >= 0; i++) {
		char *dst = scratch;
		size_t room = sizeof scratch;
		if (b->len < max) {
			if (b->cap - b->len < CHUNK && b->cap < max) {
				size_t cap = b->cap ? b->cap * 2 : CHUNK;
				if (cap > max)
					cap = max;
				char *np = realloc(b->p, cap);
				if (!np)
					die("out of memory");
				b->p = np, b->cap = cap;
			}
			dst = b->p + b->len;
			room = b->cap - b->len;
		}
		ssize_t n = read(*fd, dst, room);
		if (n > 0) {
			if (dst != scratch)
				b->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		xclose(fd); /* EOF or error */
	}
}

static void read_errpipe(struct child *c)
{
	int e;
	ssize_t n;
	do
		n = read(c->errp_fd, &e, sizeof e);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n == (ssize_t)sizeof e)
		c->exec_errno = e;
	xclose(&c->errp_fd);
}

static void write_stdin(struct child *c)
{
	while (c->in_off < c->in_len) {
		ssize_t n = write(c->in_fd, c->in + c->in_off, c->in_len - c->in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			break; /* EPIPE: the child does not read its input */
		c->in_off += (size_t)n;
	}
	xclose(&c->in_fd);
	free(c->in_alloc);
	c->in_alloc = NULL;
}

static void kill_child(struct child *c, int timed_out)
{
	if (c->reaped || c->killed)
		return;
	kill(c->pid, SIGKILL);
	c->killed = 1;
	c->timed_out = timed_out;
}

static void free_child(struct child *c)
{
	xclose(&c->in_fd), xclose(&c->out_fd), xclose(&c->err_fd), xclose(&c->errp_fd);
	free(c->in_alloc);
	free(c->out.p);
	free(c->err.p);
	free(c);
}

/* Answers for a reaped child once its output ended (or at once when we killed it); 1 when done. */
static int maybe_finish(struct child *c)
{
	if (!c->reaped)
		return 0;
	if (c->killed) {
		drain(&c->out_fd, &c->out, c->max);
		drain(&c->err_fd, &c->err, c->max);
	} else if (c->out_fd >= 0 || c->err_fd >= 0) {
		return 0;
	}
	if (c->errp_fd >= 0)
		read_errpipe(c); /* the child is gone: its end is closed, this does not block */
	int kind = K_OK;
	if (c->timed_out)
		kind = K_TIMEOUT;
	else if (c->exec_errno)
		kind = c->exec_errno == ENOENT ? K_ENOENT : K_EXEC;
	respond(c, kind);
	free_child(c);
	return 1;
}

static void reap(void)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof si) > 0)
		;
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (size_t i = 0; i < nkids; i++) {
			if (kids[i]->pid == pid) {
				kids[i]->reaped = 1;
				kids[i]->status = st;
				xclose(&kids[i]->in_fd);
				break;
			}
		}
	}
}

static void child_fail(int errp)
{
	int e = errno;
	while (write(errp, &e, sizeof e) < 0 && errno == EINTR)
		;
	_exit(127);
}

static void exec_file(const char *file, char **argv, char **envp)
{
	execve(file, argv, envp);
	if (errno == ENOEXEC && argv[0]) { /* a script without #!: run it with sh, like execvp */
		int argc = 0;
		while (argv[argc])
			argc++;
		char **sh = alloca((size_t)(argc + 2) * sizeof *sh);
		sh[0] = "sh";
		sh[1] = (char *)file;
		memcpy(sh + 2, argv + 1, (size_t)argc * sizeof *sh);
		execve("/bin/sh", sh, envp);
		errno = ENOEXEC;
	}
}

/* execvpe with the PATH of the child's environment (glibc's uses the caller's). */
static void exec_search(const char *file, char **argv, char **envp)
{
	if (strchr(file, '/')) {
		exec_file(file, argv, envp);
		return;
	}
	const char *path = DEF_PATH;
	for (char **e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	size_t flen = strlen(file);
	int saw_eacces = 0, last = ENOENT;
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		char full[PATH_MAX];
		if (dlen + 1 + flen + 1 <= sizeof full) {
			memcpy(full, p, dlen);
			full[dlen] = '/';
			memcpy(full + dlen + 1, file, flen + 1);
			exec_file(dlen ? full : file, argv, envp);
			last = errno;
			if (errno == EACCES)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ELOOP &&
				 errno != ENAMETOOLONG && errno != ENODEV && errno != ETIMEDOUT)
				return;
		}
		if (!*end)
			break;
		p = end;
	}
	errno = saw_eacces ? EACCES : last;
}

/* Marks every fd from 3 up close-on-exec. */
static void cloexec_from_3(void)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		int self = dirfd(d);
		struct dirent *de;
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' && atoi(de->d_name) > 2 && atoi(de->d_name) != self)
				fcntl(atoi(de->d_name), F_SETFD, FD_CLOEXEC);
		closedir(d);
		return;
	}
	for (int fd = 3; fd < 65536; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void child_main(int in_r, int out_w, int err_w, int errp, const char *file, const char *cwd, char **argv,
		       char **envp)
{
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		child_fail(errp);
	cloexec_from_3();
	if (*cwd && chdir(cwd) < 0)
		child_fail(errp);
	exec_search(file, argv, envp);
	child_fail(errp);
}

/* ---- requests ----------------------------------------------------------------------------------- */

static const char *take_str(const char **p, const char *end)
{
	const char *s = *p;
	const char *z = memchr(s, 0, (size_t)(end - s));
	if (!z) {
		errno = 0;
		die("unterminated string in request");
	}
	*p = z + 1;
	return s;
}

static uint32_t take_u32(const char **p, const char *end)
{
	if (end - *p < 4) {
		errno = 0;
		die("short request");
	}
	uint32_t v = get_u32(*p);
	*p += 4;
	return v;
}

static char **take_vec(const char **p, const char *end)
{
	uint32_t n = take_u32(p, end);
	if (n > (size_t)(end - *p)) {
		errno = 0;
		die("bad vector length");
	}
	char **v = xmalloc(((size_t)n + 1) * sizeof *v);
	for (uint32_t i = 0; i < n; i++)
		v[i] = (char *)take_str(p, end);
	v[n] = NULL;
	return v;
}

static void add_kid(struct child *c)
{
	if (nkids == capkids) {
		capkids = capkids ? capkids * 2 : 64;
		kids = realloc(kids, capkids * sizeof *kids);
		if (!kids)
			die("out of memory");
	}
	kids[nkids++] = c;
}

static int mkpipe(int fds[2], int ours)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	set_nonblock(fds[ours]);
	return 0;
}

/* `frame` (the bytes after len) is owned when `owned`: then the child keeps it for its stdin. */
static void handle_frame(char *frame, uint32_t len, int owned)
{
	const char *p = frame, *end = frame + len;
	uint32_t id = take_u32(&p, end);
	if (len == 4) {
		for (size_t i = 0; i < nkids; i++)
			if (kids[i]->id == id)
				kill_child(kids[i], 0);
		if (owned)
			free(frame);
		return;
	}
	struct child *c = calloc(1, sizeof *c);
	if (!c)
		die("out of memory");
	c->id = id;
	uint32_t timeout = take_u32(&p, end);
	c->max = take_u32(&p, end);
	const char *file = take_str(&p, end);
	const char *cwd = take_str(&p, end);
	char **argv = take_vec(&p, end);
	char **envp = take_vec(&p, end);
	c->in_len = take_u32(&p, end);
	if (c->in_len > (size_t)(end - p)) {
		errno = 0;
		die("bad stdin length");
	}
	if (owned) {
		c->in_alloc = frame;
		c->in = p;
	} else if (c->in_len) {
		c->in_alloc = xmalloc(c->in_len);
		memcpy(c->in_alloc, p, c->in_len);
		c->in = c->in_alloc;
	}
	c->deadline = timeout ? now_ms() + timeout : 0;
	c->in_fd = c->out_fd = c->err_fd = c->errp_fd = -1;

	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2] = {-1, -1};
	pid_t pid = -1;
	if (mkpipe(in, 1) == 0 && mkpipe(out, 0) == 0 && mkpipe(err, 0) == 0 && mkpipe(ep, 0) == 0)
		pid = fork();
	if (pid == 0)
		child_main(in[0], out[1], err[1], ep[1], file, cwd, argv, envp);
	int e = errno;
	free(argv);
	free(envp);
	close(in[0]), close(out[1]), close(err[1]), close(ep[1]);
	c->in_fd = in[1], c->out_fd = out[0], c->err_fd = err[0], c->errp_fd = ep[0];
	if (pid < 0) { /* pipe or fork failed: answer now */
		c->exec_errno = e ? e : EAGAIN;
		c->reaped = 1;
		c->status = 127 << 8;
		respond(c, c->exec_errno == ENOENT ? K_ENOENT : K_EXEC);
		free_child(c);
		return;
	}
	c->pid = pid;
	if (c->in_len == 0) {
		xclose(&c->in_fd);
		free(c->in_alloc);
		c->in_alloc = NULL;
	}
	add_kid(c);
}

static void parse_rbuf(void)
{
	size_t off = 0;
	while (rlen - off >= 4) {
		uint32_t len = get_u32(rbuf + off);
		if (len < 4 || len > MAX_FRAME) {
			errno = 0;
			die("bad frame length");
		}
		if (rlen - off - 4 >= len) {
			handle_frame(rbuf + off + 4, len, 0);
			off += 4 + (size_t)len;
			continue;
		}
		if (4 + (size_t)len > sizeof rbuf) {
			big_len = len;
			big_have = rlen - off - 4;
			big = xmalloc(len);
			memcpy(big, rbuf + off + 4, big_have);
			off = rlen;
		}
		break;
	}
	memmove(rbuf, rbuf + off, rlen - off);
	rlen -= off;
}

static void read_requests(void)
{
	for (int i = 0; i < 64; i++) {
		ssize_t n;
		if (big) {
			n = read(0, big + big_have, big_len - big_have);
			if (n > 0) {
				big_have += (size_t)n;
				if (big_have == big_len) {
					char *f = big;
					big = NULL;
					handle_frame(f, (uint32_t)big_len, 1);
				}
				continue;
			}
		} else {
			n = read(0, rbuf + rlen, sizeof rbuf - rlen);
			if (n > 0) {
				rlen += (size_t)n;
				parse_rbuf();
				continue;
			}
		}
		if (n == 0) {
			in_eof = 1;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return;
		die("read requests");
	}
}

/* ---- main loop ---------------------------------------------------------------------------------- */

int main(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		die("prctl(PR_SET_PDEATHSIG)");
	const char *pp = getenv("CORRAL_SPAWN_PPID");
	if (pp && *pp && getppid() != (pid_t)atol(pp))
		return 2; /* the daemon died before the prctl */
	signal(SIGPIPE, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd");
	set_nonblock(0);
	set_nonblock(1);

	struct pollfd *pfd = NULL;
	struct child **owner = NULL;
	size_t cap = 0;
	for (;;) {
		if (in_eof && nkids == 0 && !outq)
			return 0;
		if (cap < 3 + 4 * nkids) {
			cap = 3 + 4 * nkids + 64;
			pfd = realloc(pfd, cap * sizeof *pfd);
			owner = realloc(owner, cap * sizeof *owner);
			if (!pfd || !owner)
				die("out of memory");
		}
		size_t n = 0;
		pfd[n++] = (struct pollfd){.fd = in_eof ? -1 : 0, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = outq ? 1 : -1, .events = POLLOUT};
		pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		long long now = now_ms(), wait = -1;
		for (size_t i = 0; i < nkids; i++) {
			struct child *c = kids[i];
			int fds[4] = {c->out_fd, c->err_fd, c->errp_fd, c->in_fd};
			for (int j = 0; j < 4; j++) {
				if (fds[j] < 0)
					continue;
				owner[n] = c;
				pfd[n++] = (struct pollfd){.fd = fds[j], .events = j == 3 ? POLLOUT : POLLIN};
			}
			if (c->deadline && !c->killed && !c->reaped) {
				long long left = c->deadline > now ? c->deadline - now : 0;
				if (wait < 0 || left < wait)
					wait = left;
			}
		}
		if (poll(pfd, n, (int)(wait > INT_MAX ? INT_MAX : wait)) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (size_t i = 3; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			struct child *c = owner[i];
			if (pfd[i].fd == c->out_fd)
				drain(&c->out_fd, &c->out, c->max);
			else if (pfd[i].fd == c->err_fd)
				drain(&c->err_fd, &c->err, c->max);
			else if (pfd[i].fd == c->errp_fd)
				read_errpipe(c);
			else if (pfd[i].fd == c->in_fd)
				write_stdin(c);
		}
		if (pfd[2].revents)
			reap();
		if (pfd[1].revents)
			flush_out();
		if (pfd[0].revents)
			read_requests();
		now = now_ms();
		for (size_t i = 0; i < nkids;) {
			struct child *c = kids[i];
			if (c->deadline && now >= c->deadline)
				kill_child(c, 1);
			if (maybe_finish(c))
				kids[i] = kids[--nkids];
			else
				i++;
		}
	}
}
