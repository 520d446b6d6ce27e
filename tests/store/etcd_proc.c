/* tests/store/etcd_proc.c — local etcd clusters for tests and benchmarks.
 *
 * Members are forked etcd processes on free loopback ports. Everything that
 * could leave a process or a directory behind has a second line of defence:
 * an atexit handler, fatal-signal handlers and PR_SET_PDEATHSIG (see the
 * header). Health checks speak plain HTTP/1.0 over a socket so that this
 * file needs nothing beyond libc: a TLS member is probed on its plain-http
 * metrics listener (/health, /metrics), and its certificates come from the
 * `openssl` command line.
 */
#include "etcd_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MEMBERS 9
#define START_TIMEOUT_MS 30000
#define STOP_GRACE_MS 5000
#define START_ATTEMPTS 3
#define DIR_TAG "kubus-etcd-"
#define TOOL_TIMEOUT_MS 30000

extern char **environ;

struct member {
	pid_t pid;               /* 0 when not running */
	int client_port, peer_port;
	int metrics_port;        /* TLS clusters only, else 0 */
	int probe_port;          /* plain http /health: client or metrics */
	char name[16];
	char client_url[64];
	char peer_url[64];
	char metrics_url[64];
	char data_dir[512];
	char log_path[512];
};

struct etcd_cluster {
	int n;
	bool tls;
	char ca[512], cert[512], key[512]; /* TLS: files in the PKI dir */
	char root[448];          /* parent of every member's dirs */
	char token[64];
	char *initial_cluster;   /* m0=http://…,m1=http://… */
	char *endpoints;
	struct member m[MAX_MEMBERS];
	struct etcd_cluster *next; /* in the live list, for atexit */
};

/* --- the safety net: live clusters and pids ------------------------------ */

#define MAX_PIDS 64
static atomic_int g_pids[MAX_PIDS]; /* read by signal handlers */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct etcd_cluster *g_live;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const int g_fatal[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT,
    SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#define NFATAL (sizeof g_fatal / sizeof g_fatal[0])
static struct sigaction g_old[NFATAL];

static void pid_add(pid_t pid)
{
	for (int i = 0; i < MAX_PIDS; i++) {
		int z = 0;
		if (atomic_compare_exchange_strong(&g_pids[i], &z, (int)pid))
			return;
	}
}

static void pid_del(pid_t pid)
{
	for (int i = 0; i < MAX_PIDS; i++) {
		int p = (int)pid;
		if (atomic_compare_exchange_strong(&g_pids[i], &p, 0))
			return;
	}
}

/* Async-signal-safe: kill every member we started, then let the signal do
 * what it would have done without us. */
static void on_fatal(int sig)
{
	int saved = errno;
	for (int i = 0; i < MAX_PIDS; i++) {
		int p = atomic_load(&g_pids[i]);
		if (p > 0)
			kill((pid_t)p, SIGKILL);
	}
	for (size_t i = 0; i < NFATAL; i++) {
		if (g_fatal[i] == sig) {
			sigaction(sig, &g_old[i], NULL);
			break;
		}
	}
	raise(sig);
	errno = saved;
}

static void at_exit(void)
{
	for (;;) {
		pthread_mutex_lock(&g_mu);
		struct etcd_cluster *c = g_live;
		pthread_mutex_unlock(&g_mu);
		if (!c)
			break;
		etcd_cluster_stop(c);
	}
}

static void install_once(void)
{
	atexit(at_exit);
	for (size_t i = 0; i < NFATAL; i++) {
		struct sigaction old, sa;
		if (sigaction(g_fatal[i], NULL, &old) != 0)
			continue;
		if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)
			continue;
		g_old[i] = old;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_fatal;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		sigaction(g_fatal[i], &sa, NULL);
	}
}

/* --- small helpers ------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int rm_one(const char *p, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(p);
	return 0;
}

static void rmrf(const char *path)
{
	if (path && *path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_dir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

/* Remove data dirs left by test processes that no longer exist. */
static void sweep_stale(void)
{
	DIR *d = opendir(tmp_dir());
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, DIR_TAG, strlen(DIR_TAG)) != 0)
			continue;
		long pid = strtol(e->d_name + strlen(DIR_TAG), NULL, 10);
		if (pid <= 0 || pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char p[1024];
		snprintf(p, sizeof p, "%s/%s", tmp_dir(), e->d_name);
		rmrf(p);
	}
	closedir(d);
}

/* Free loopback ports: all bound at once so none repeats, then released.
 * Another process could take one before etcd binds it; start() retries. */
static int pick_ports(int *ports, int n)
{
	int fds[3 * MAX_MEMBERS];
	int rc = 0, i;
	for (i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t al = sizeof a;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 ||
		    bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
		    getsockname(fds[i], (struct sockaddr *)&a, &al) != 0) {
			rc = -1;
			i++;
			break;
		}
		ports[i] = ntohs(a.sin_port);
	}
	while (i-- > 0)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

/* One HTTP/1.0 exchange with 127.0.0.1:port. Returns the status code and
 * the body in out (NUL-terminated, truncated to outlen), or -1. */
static int http_local(int port, const char *method, const char *path,
    const char *body, char *out, size_t outlen, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	/* Room for the headers on top of what the caller wants. */
	size_t cap = outlen + 2048 > 8192 ? outlen + 2048 : 8192;
	char *buf = malloc(cap);
	if (!buf)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		free(buf);
		return -1;
	}
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int status = -1;
	char req[512];
	size_t blen = body ? strlen(body) : 0;
	int rl = snprintf(req, sizeof req,
	    "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    method, path, port, blen, body ? body : "");
	if (rl < 0 || (size_t)rl >= sizeof req)
		goto out_close;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 &&
	    errno != EINPROGRESS)
		goto out_close;
	struct pollfd pf = {.fd = fd, .events = POLLOUT};
	int left = (int)(deadline - now_ms());
	if (left <= 0 || poll(&pf, 1, left) != 1)
		goto out_close;
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr)
		goto out_close;
	if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl)
		goto out_close;
	size_t got = 0;
	for (;;) {
		pf.events = POLLIN;
		left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&pf, 1, left) != 1)
			goto out_close;
		ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == cap - 1)
			break;
	}
	buf[got] = '\0';
	if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
		status = -1;
		goto out_close;
	}
	if (out && outlen) {
		const char *b = strstr(buf, "\r\n\r\n");
		snprintf(out, outlen, "%s", b ? b + 4 : "");
	}
out_close:
	close(fd);
	free(buf);
	return status;
}

static bool member_healthy(const struct member *m)
{
	char body[256];
	int st = http_local(m->probe_port, "GET", "/health", NULL, body,
	    sizeof body, 1000);
	return st == 200 && strstr(body, "\"health\":\"true\"") != NULL;
}

/* The last lines of a member's log, for error messages. */
static void log_tail(const struct member *m, char *out, size_t outlen)
{
	out[0] = '\0';
	FILE *f = fopen(m->log_path, "r");
	if (!f)
		return;
	if (fseek(f, 0, SEEK_END) == 0) {
		long sz = ftell(f);
		long from = sz > (long)outlen - 1 ? sz - ((long)outlen - 1) : 0;
		fseek(f, from, SEEK_SET);
	}
	size_t r = fread(out, 1, outlen - 1, f);
	out[r] = '\0';
	fclose(f);
}

/* --- members ------------------------------------------------------------- */

/* $KUBUS_ETCD, else `etcd` on $PATH, else /usr/bin/etcd. */
static int find_etcd(char *out, size_t outlen)
{
	const char *env = getenv("KUBUS_ETCD");
	if (env && *env) {
		snprintf(out, outlen, "%s", env);
		return access(out, X_OK);
	}
	const char *path = getenv("PATH");
	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		if (len > 0) {
			snprintf(out, outlen, "%.*s/etcd", (int)len, path);
			if (access(out, X_OK) == 0)
				return 0;
		}
		path = end ? end + 1 : NULL;
	}
	snprintf(out, outlen, "/usr/bin/etcd");
	return access(out, X_OK);
}

static int spawn(struct etcd_cluster *c, int i, bool fresh)
{
	struct member *m = &c->m[i];
	char bin[512];
	if (find_etcd(bin, sizeof bin) != 0) {
		errno = ENOENT;
		return -1;
	}

	/* Everything the child needs is built before fork: after it only
	 * async-signal-safe calls are allowed in a threaded process. */
	const char *argv[48];
	int a = 0;
	argv[a++] = bin;
	argv[a++] = "--name";
	argv[a++] = m->name;
	argv[a++] = "--data-dir";
	argv[a++] = m->data_dir;
	argv[a++] = "--listen-client-urls";
	argv[a++] = m->client_url;
	argv[a++] = "--advertise-client-urls";
	argv[a++] = m->client_url;
	argv[a++] = "--listen-peer-urls";
	argv[a++] = m->peer_url;
	argv[a++] = "--initial-advertise-peer-urls";
	argv[a++] = m->peer_url;
	argv[a++] = "--initial-cluster";
	argv[a++] = c->initial_cluster;
	argv[a++] = "--initial-cluster-token";
	argv[a++] = c->token;
	argv[a++] = "--initial-cluster-state";
	argv[a++] = fresh ? "new" : "existing";
	/* Room for a store value of 1.5 MiB (KB_STORE_VALUE_MAX_DEFAULT) plus
	 * its key and the request's framing: etcd's default is exactly
	 * 1.5 MiB for the whole request. Not a durability setting. */
	argv[a++] = "--max-request-bytes";
	argv[a++] = "8388608";
	if (c->tls) {
		/* Clients: https only, with a certificate from our CA. The
		 * server certificate also serves etcd's own JSON gateway as
		 * its client to the member's gRPC server, hence clientAuth
		 * in its extended key usage (etcd_pki_create). */
		argv[a++] = "--cert-file";
		argv[a++] = c->cert;
		argv[a++] = "--key-file";
		argv[a++] = c->key;
		argv[a++] = "--trusted-ca-file";
		argv[a++] = c->ca;
		argv[a++] = "--client-cert-auth";
		/* /health and /metrics in plain http, for our probes. */
		argv[a++] = "--listen-metrics-urls";
		argv[a++] = m->metrics_url;
	}
	argv[a++] = NULL;

	/* etcd refuses flags that an ETCD_* variable also sets. */
	size_t ne = 0;
	while (environ[ne])
		ne++;
	char **envp = calloc(ne + 1, sizeof *envp);
	if (!envp)
		return -1;
	size_t k = 0;
	for (size_t j = 0; j < ne; j++)
		if (strncmp(environ[j], "ETCD_", 5) != 0)
			envp[k++] = environ[j];

	int logfd = open(m->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0644);
	if (logfd < 0) {
		free(envp);
		return -1;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(logfd);
		free(envp);
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		/* Default dispositions for the signals we may have caught. */
		for (size_t s = 0; s < NFATAL; s++)
			signal(g_fatal[s], SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(bin, (char *const *)argv, envp);
		_exit(127);
	}
	close(logfd);
	free(envp);
	m->pid = pid;
	pid_add(pid);
	return 0;
}

/* Reap member i if it exited. True when it is (now) not running. */
static bool reap(struct member *m, int *status)
{
	if (m->pid <= 0)
		return true;
	int st;
	pid_t r = waitpid(m->pid, &st, WNOHANG);
	if (r == m->pid || (r < 0 && errno == ECHILD)) {
		if (status)
			*status = r == m->pid ? st : 0;
		pid_del(m->pid);
		m->pid = 0;
		return true;
	}
	return false;
}

static void end_member(struct member *m, int sig, int grace_ms)
{
	if (m->pid <= 0)
		return;
	kill(m->pid, sig);
	int64_t deadline = now_ms() + grace_ms;
	while (!reap(m, NULL)) {
		if (now_ms() >= deadline) {
			kill(m->pid, SIGKILL);
			int st;
			while (waitpid(m->pid, &st, 0) < 0 && errno == EINTR)
				;
			pid_del(m->pid);
			m->pid = 0;
			return;
		}
		sleep_ms(20);
	}
}

/* Wait until members [from, to) are healthy. */
static int wait_healthy(struct etcd_cluster *c, int from, int to,
    char *err, size_t errlen)
{
	int64_t deadline = now_ms() + START_TIMEOUT_MS;
	for (;;) {
		int ok = 0;
		for (int i = from; i < to; i++) {
			struct member *m = &c->m[i];
			int st = 0;
			if (reap(m, &st)) {
				char tail[600];
				log_tail(m, tail, sizeof tail);
				seterr(err, errlen,
				    "etcd member %d (%s) exited (status %d) "
				    "while starting; log %s ends: %s",
				    i, m->client_url, st, m->log_path, tail);
				return -1;
			}
			if (member_healthy(m))
				ok++;
		}
		if (ok == to - from)
			return 0;
		if (now_ms() >= deadline) {
			seterr(err, errlen,
			    "etcd: %d of %d members healthy after %d ms "
			    "(logs under %s)",
			    ok, to - from, START_TIMEOUT_MS, c->root);
			return -1;
		}
		sleep_ms(50);
	}
}

static void cluster_unlink(struct etcd_cluster *c)
{
	pthread_mutex_lock(&g_mu);
	for (struct etcd_cluster **pp = &g_live; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&g_mu);
}

static void cluster_free(struct etcd_cluster *c)
{
	for (int i = 0; i < c->n; i++)
		end_member(&c->m[i], SIGTERM, STOP_GRACE_MS);
	rmrf(c->root);
	free(c->initial_cluster);
	free(c->endpoints);
	free(c);
}

/* Lay out ports, URLs and dirs for a fresh attempt. */
static int cluster_layout(struct etcd_cluster *c, char *err, size_t errlen)
{
	int ports[3 * MAX_MEMBERS];
	int per = c->tls ? 3 : 2; /* client, peer[, metrics] */
	if (pick_ports(ports, per * c->n) != 0) {
		seterr(err, errlen, "etcd: cannot find free loopback ports: %s",
		    strerror(errno));
		return -1;
	}
	size_t icap = (size_t)c->n * 64 + 1, ecap = (size_t)c->n * 64 + 1;
	free(c->initial_cluster);
	free(c->endpoints);
	c->initial_cluster = calloc(1, icap);
	c->endpoints = calloc(1, ecap);
	if (!c->initial_cluster || !c->endpoints) {
		seterr(err, errlen, "etcd: out of memory");
		return -1;
	}
	for (int i = 0; i < c->n; i++) {
		struct member *m = &c->m[i];
		m->client_port = ports[per * i];
		m->peer_port = ports[per * i + 1];
		m->metrics_port = c->tls ? ports[per * i + 2] : 0;
		m->probe_port = c->tls ? m->metrics_port : m->client_port;
		snprintf(m->name, sizeof m->name, "m%d", i);
		snprintf(m->client_url, sizeof m->client_url, "%s://127.0.0.1:%d",
		    c->tls ? "https" : "http", m->client_port);
		if (c->tls)
			snprintf(m->metrics_url, sizeof m->metrics_url,
			    "http://127.0.0.1:%d", m->metrics_port);
		else
			m->metrics_url[0] = '\0';
		snprintf(m->peer_url, sizeof m->peer_url, "http://127.0.0.1:%d",
		    m->peer_port);
		snprintf(m->data_dir, sizeof m->data_dir, "%s/m%d.etcd",
		    c->root, i);
		snprintf(m->log_path, sizeof m->log_path, "%s/m%d.log", c->root,
		    i);
		size_t il = strlen(c->initial_cluster);
		snprintf(c->initial_cluster + il, icap - il, "%s%s=%s",
		    i ? "," : "", m->name, m->peer_url);
		size_t el = strlen(c->endpoints);
		snprintf(c->endpoints + el, ecap - el, "%s%s", i ? "," : "",
		    m->client_url);
	}
	return 0;
}

/* pki_dir NULL: a plain cluster. */
static struct etcd_cluster *cluster_start(int members, const char *pki_dir,
    char *err, size_t errlen)
{
	if (members < 1 || members > MAX_MEMBERS) {
		seterr(err, errlen, "etcd: %d members asked, 1..%d allowed",
		    members, MAX_MEMBERS);
		return NULL;
	}
	pthread_once(&g_once, install_once);
	sweep_stale();

	struct etcd_cluster *c = calloc(1, sizeof *c);
	if (!c) {
		seterr(err, errlen, "etcd: out of memory");
		return NULL;
	}
	c->n = members;
	if (pki_dir) {
		c->tls = true;
		const char *files[] = {ETCD_PKI_CA, ETCD_PKI_SERVER_CERT,
		    ETCD_PKI_SERVER_KEY};
		char *dst[] = {c->ca, c->cert, c->key};
		for (int i = 0; i < 3; i++) {
			int l = snprintf(dst[i], sizeof c->ca, "%s/%s", pki_dir,
			    files[i]);
			if (l < 0 || (size_t)l >= sizeof c->ca ||
			    access(dst[i], R_OK) != 0) {
				seterr(err, errlen, "etcd: TLS file %s/%s: %s "
				    "(make the PKI with etcd_pki_create)",
				    pki_dir, files[i], l < 0 ||
				    (size_t)l >= sizeof c->ca ?
				    "path too long" : strerror(errno));
				free(c);
				return NULL;
			}
		}
	}
	snprintf(c->root, sizeof c->root, "%s/" DIR_TAG "%ld-XXXXXX",
	    tmp_dir(), (long)getpid());
	if (!mkdtemp(c->root)) {
		seterr(err, errlen, "etcd: mkdtemp %s: %s", c->root,
		    strerror(errno));
		free(c);
		return NULL;
	}
	snprintf(c->token, sizeof c->token, "kubus-%ld-%lld", (long)getpid(),
	    (long long)now_ms());
	pthread_mutex_lock(&g_mu);
	c->next = g_live;
	g_live = c;
	pthread_mutex_unlock(&g_mu);

	for (int attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
		if (cluster_layout(c, err, errlen) != 0)
			break;
		int i;
		for (i = 0; i < c->n; i++) {
			if (spawn(c, i, true) != 0) {
				seterr(err, errlen, "etcd: cannot start member "
				    "%d: %s%s", i, strerror(errno),
				    errno == ENOENT ? " (no etcd binary: "
				    "apt-get install -y etcd-server, or set "
				    "$KUBUS_ETCD)" : "");
				attempt = START_ATTEMPTS;
				break;
			}
		}
		if (i == c->n && wait_healthy(c, 0, c->n, err, errlen) == 0)
			return c;
		/* Most likely a port taken in between: start over afresh. */
		for (i = 0; i < c->n; i++) {
			end_member(&c->m[i], SIGKILL, STOP_GRACE_MS);
			rmrf(c->m[i].data_dir);
			unlink(c->m[i].log_path);
		}
	}
	cluster_unlink(c);
	cluster_free(c);
	return NULL;
}

struct etcd_cluster *etcd_cluster_start(int members, char *err, size_t errlen)
{
	return cluster_start(members, NULL, err, errlen);
}

struct etcd_cluster *etcd_cluster_start_tls(int members, const char *pki_dir,
    char *err, size_t errlen)
{
	if (!pki_dir || !*pki_dir) {
		seterr(err, errlen, "etcd: no PKI dir for a TLS cluster");
		return NULL;
	}
	return cluster_start(members, pki_dir, err, errlen);
}

const char *etcd_cluster_endpoints(struct etcd_cluster *c)
{
	return c->endpoints;
}

int etcd_cluster_members(struct etcd_cluster *c)
{
	return c->n;
}

const char *etcd_cluster_member_endpoint(struct etcd_cluster *c, int i)
{
	return i >= 0 && i < c->n ? c->m[i].client_url : NULL;
}

int etcd_cluster_member_running(struct etcd_cluster *c, int i)
{
	if (i < 0 || i >= c->n)
		return 0;
	return !reap(&c->m[i], NULL);
}

/* The quoted value after "key":" in a JSON text, copied into out. */
static bool json_str_after(const char *json, const char *key, char *out,
    size_t outlen)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const char *p = strstr(json, pat);
	if (!p)
		return false;
	p += strlen(pat);
	const char *q = strchr(p, '"');
	if (!q || (size_t)(q - p) >= outlen)
		return false;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return true;
}

/* A gauge from a member's /metrics (plain http, TLS clusters): its value,
 * or -1 when the member does not answer or does not have it. */
static int member_gauge(const struct member *m, const char *name)
{
	size_t cap = 1024 * 1024; /* etcd's /metrics is about 150 KB */
	char *body = malloc(cap);
	if (!body)
		return -1;
	int v = -1;
	int st = http_local(m->metrics_port, "GET", "/metrics", NULL, body, cap,
	    2000);
	char pat[96];
	snprintf(pat, sizeof pat, "\n%s ", name);
	const char *p = st == 200 ? strstr(body, pat) : NULL;
	if (p)
		v = atoi(p + strlen(pat));
	free(body);
	return v;
}

/* The leader of a TLS cluster, whose client port we cannot ask: the one
 * running member that calls itself leader, when every other running member
 * that answers has a leader. */
static int leader_by_metrics(struct etcd_cluster *c)
{
	int leader = -1;
	for (int i = 0; i < c->n; i++) {
		if (!etcd_cluster_member_running(c, i))
			continue;
		int is = member_gauge(&c->m[i], "etcd_server_is_leader");
		if (is == 1) {
			if (leader >= 0)
				return -1; /* two claims: an election going on */
			leader = i;
		} else if (is == 0 &&
		    member_gauge(&c->m[i], "etcd_server_has_leader") != 1) {
			return -1;
		}
	}
	return leader;
}

int etcd_cluster_leader(struct etcd_cluster *c)
{
	if (c->tls)
		return leader_by_metrics(c);
	char ids[MAX_MEMBERS][32], leader[MAX_MEMBERS][32];
	for (int i = 0; i < c->n; i++) {
		ids[i][0] = leader[i][0] = '\0';
		if (!etcd_cluster_member_running(c, i))
			continue;
		char body[2048];
		int st = http_local(c->m[i].client_port, "POST",
		    "/v3/maintenance/status", "{}", body, sizeof body, 2000);
		if (st != 200)
			continue;
		json_str_after(body, "member_id", ids[i], sizeof ids[i]);
		json_str_after(body, "leader", leader[i], sizeof leader[i]);
	}
	for (int i = 0; i < c->n; i++) {
		if (!ids[i][0])
			continue;
		int votes = 0, asked = 0;
		for (int j = 0; j < c->n; j++) {
			if (!leader[j][0])
				continue;
			asked++;
			votes += strcmp(leader[j], ids[i]) == 0;
		}
		if (asked && votes == asked)
			return i;
	}
	return -1;
}

void etcd_cluster_stop_member(struct etcd_cluster *c, int i)
{
	if (i >= 0 && i < c->n)
		end_member(&c->m[i], SIGTERM, STOP_GRACE_MS);
}

void etcd_cluster_kill_member(struct etcd_cluster *c, int i)
{
	if (i >= 0 && i < c->n)
		end_member(&c->m[i], SIGKILL, STOP_GRACE_MS);
}

int etcd_cluster_restart_member(struct etcd_cluster *c, int i)
{
	if (i < 0 || i >= c->n)
		return -1;
	if (etcd_cluster_member_running(c, i))
		return 0;
	/* The member's data dir already holds its identity and the cluster
	 * membership: etcd ignores the initial-cluster flags then. */
	if (spawn(c, i, false) != 0) {
		fprintf(stderr, "etcd: cannot restart member %d: %s\n", i,
		    strerror(errno));
		return -1;
	}
	char err[1024];
	if (wait_healthy(c, i, i + 1, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

void etcd_cluster_stop(struct etcd_cluster *c)
{
	if (!c)
		return;
	cluster_unlink(c);
	cluster_free(c);
}

/* --- a throwaway PKI ------------------------------------------------------- */

/* openssl's settings for every certificate made here: no system config. */
static const char pki_cnf[] =
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "CN = kubus-test\n"
    "[ca]\n"
    "basicConstraints = critical,CA:TRUE\n"
    "keyUsage = critical,keyCertSign,cRLSign\n"
    "subjectKeyIdentifier = hash\n"
    "[server]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature,keyEncipherment\n"
    /* clientAuth too: etcd's gateway presents this certificate to its own
     * gRPC server when --client-cert-auth is on. */
    "extendedKeyUsage = serverAuth,clientAuth\n"
    "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
    "[client]\n"
    "basicConstraints = critical,CA:FALSE\n"
    "keyUsage = critical,digitalSignature\n"
    "extendedKeyUsage = clientAuth\n";

/* Run `openssl args…` (NULL-terminated) with its output appended to log;
 * 0 when it exits 0 within TOOL_TIMEOUT_MS. */
static int run_openssl(const char *log, char *err, size_t errlen,
    const char *const args[])
{
	const char *bin = getenv("KUBUS_OPENSSL");
	if (!bin || !*bin)
		bin = "openssl";
	const char *argv[32];
	int a = 0;
	argv[a++] = bin;
	for (int i = 0; args[i] && a < 31; i++)
		argv[a++] = args[i];
	argv[a] = NULL;

	posix_spawn_file_actions_t fa;
	if (posix_spawn_file_actions_init(&fa) != 0) {
		seterr(err, errlen, "etcd PKI: out of memory");
		return -1;
	}
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log,
	    O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int rc = posix_spawnp(&pid, bin, &fa, NULL, (char *const *)argv,
	    environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		seterr(err, errlen, "etcd PKI: cannot run %s: %s%s", bin,
		    strerror(rc), rc == ENOENT ? " (apt-get install -y "
		    "openssl, or set $KUBUS_OPENSSL)" : "");
		return -1;
	}
	int64_t deadline = now_ms() + TOOL_TIMEOUT_MS;
	int st = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			seterr(err, errlen, "etcd PKI: waitpid: %s",
			    strerror(errno));
			return -1;
		}
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			seterr(err, errlen, "etcd PKI: `%s %s` did not finish "
			    "in %d ms", bin, args[0], TOOL_TIMEOUT_MS);
			return -1;
		}
		sleep_ms(5);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char tail[600] = "";
	FILE *f = fopen(log, "r");
	if (f) {
		if (fseek(f, 0, SEEK_END) == 0) {
			long sz = ftell(f);
			long from = sz > (long)sizeof tail - 1 ?
			    sz - ((long)sizeof tail - 1) : 0;
			fseek(f, from, SEEK_SET);
		}
		size_t r = fread(tail, 1, sizeof tail - 1, f);
		tail[r] = '\0';
		fclose(f);
	}
	seterr(err, errlen, "etcd PKI: `%s %s …` failed (status %d): %s", bin,
	    args[0], st, tail);
	return -1;
}

char *etcd_pki_create(char *err, size_t errlen)
{
	sweep_stale();
	/* Named like a cluster's root so that sweep_stale() removes it if
	 * the test dies before etcd_pki_remove(). */
	char dir[448];
	snprintf(dir, sizeof dir, "%s/" DIR_TAG "%ld-pki-XXXXXX", tmp_dir(),
	    (long)getpid());
	if (!mkdtemp(dir)) {
		seterr(err, errlen, "etcd PKI: mkdtemp %s: %s", dir,
		    strerror(errno));
		return NULL;
	}
	char cnf[512], log[512], p[8][512];
	snprintf(cnf, sizeof cnf, "%s/openssl.cnf", dir);
	snprintf(log, sizeof log, "%s/openssl.log", dir);
	const char *names[8] = {ETCD_PKI_CA, "ca-key.pem", ETCD_PKI_OTHER_CA,
	    "other-ca-key.pem", ETCD_PKI_SERVER_CERT, ETCD_PKI_SERVER_KEY,
	    ETCD_PKI_CLIENT_CERT, ETCD_PKI_CLIENT_KEY};
	for (int i = 0; i < 8; i++)
		snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
	char *ca = p[0], *ca_key = p[1], *oca = p[2], *oca_key = p[3];
	char *srv = p[4], *srv_key = p[5], *cli = p[6], *cli_key = p[7];
	char srv_csr[512], cli_csr[512];
	snprintf(srv_csr, sizeof srv_csr, "%s/server.csr", dir);
	snprintf(cli_csr, sizeof cli_csr, "%s/client.csr", dir);

	FILE *f = fopen(cnf, "w");
	if (!f || fputs(pki_cnf, f) == EOF) {
		seterr(err, errlen, "etcd PKI: cannot write %s: %s", cnf,
		    strerror(errno));
		if (f)
			fclose(f);
		rmrf(dir);
		return NULL;
	}
	if (fclose(f) != 0) {
		seterr(err, errlen, "etcd PKI: cannot write %s: %s", cnf,
		    strerror(errno));
		rmrf(dir);
		return NULL;
	}

#define NEWKEY "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"
	const char *const ca_cmd[] = {"req", "-x509", "-config", cnf,
	    "-extensions", "ca", NEWKEY, "-keyout", ca_key, "-out", ca,
	    "-subj", "/CN=kubus-test-ca", "-days", "2", NULL};
	const char *const oca_cmd[] = {"req", "-x509", "-config", cnf,
	    "-extensions", "ca", NEWKEY, "-keyout", oca_key, "-out", oca,
	    "-subj", "/CN=kubus-test-other-ca", "-days", "2", NULL};
	const char *const srv_req[] = {"req", "-new", "-config", cnf, NEWKEY,
	    "-keyout", srv_key, "-out", srv_csr, "-subj", "/CN=localhost",
	    NULL};
	const char *const srv_sign[] = {"x509", "-req", "-in", srv_csr, "-CA",
	    ca, "-CAkey", ca_key, "-set_serial", "2", "-days", "2", "-extfile",
	    cnf, "-extensions", "server", "-out", srv, NULL};
	const char *const cli_req[] = {"req", "-new", "-config", cnf, NEWKEY,
	    "-keyout", cli_key, "-out", cli_csr, "-subj",
	    "/CN=kubus-test-client", NULL};
	const char *const cli_sign[] = {"x509", "-req", "-in", cli_csr, "-CA",
	    ca, "-CAkey", ca_key, "-set_serial", "3", "-days", "2", "-extfile",
	    cnf, "-extensions", "client", "-out", cli, NULL};
#undef NEWKEY
	const char *const *steps[] = {ca_cmd, oca_cmd, srv_req, srv_sign,
	    cli_req, cli_sign};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (run_openssl(log, err, errlen, steps[i]) != 0) {
			rmrf(dir);
			return NULL;
		}
	}
	char *out = strdup(dir);
	if (!out) {
		seterr(err, errlen, "etcd PKI: out of memory");
		rmrf(dir);
	}
	return out;
}

void etcd_pki_remove(char *pki_dir)
{
	if (!pki_dir)
		return;
	rmrf(pki_dir);
	free(pki_dir);
}
