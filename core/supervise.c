/* core/supervise.c — isolated plugins: a child `kubus` per plugin.
 *
 * The child runs the one instance in-process and joins this host's bus over
 * ipc with an ephemeral token whose principal is the plugin's own, so ACLs
 * treat it exactly as if it ran here. When it dies it is restarted with
 * exponential backoff and the rest of the host keeps serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "conn.h"
#include "host.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define HEALTHY_MS 60000 /* a run this long resets the backoff */
#define READY_TIMEOUT_S 20

struct kb_child {
	struct kb_inst *in;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	pid_t pid;
	bool ready, stopping, exited;
	int status;
	char token[65];
	char url[4200];
	int restarts;
};

static pid_t spawn(struct kb_child *ch)
{
	struct kb_inst *in = ch->in;
	struct kb_host *h = in->host;
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	/* Tests run hosts inside test binaries: argv0 then names kubus. */
	const char *prog = strstr(exe, "/kubus") && !strstr(exe, "/test-") ? exe : h->argv0;
	const char *lv[] = { "error", "warn", "info", "debug", "trace" };
	size_t nsets = 0;
	while (h->sets && h->sets[nsets])
		nsets++;
	const char **argv = calloc(20 + 2 * nsets, sizeof(char *));
	if (argv == NULL)
		return -1;
	size_t a = 0;
	argv[a++] = prog;
	argv[a++] = "child";
	argv[a++] = "-c";
	argv[a++] = h->config_file;
	argv[a++] = "--instance";
	argv[a++] = in->name;
	argv[a++] = "--join";
	argv[a++] = ch->url;
	argv[a++] = "--data-dir";
	argv[a++] = h->data_dir;
	argv[a++] = "--plugin-path";
	argv[a++] = h->plugin_path;
	argv[a++] = "--log-level";
	argv[a++] = lv[kb_log_level < 0 ? 0 : kb_log_level > 4 ? 4 : kb_log_level];
	for (size_t i = 0; i < nsets; i++) {
		argv[a++] = "--set";
		argv[a++] = h->sets[i];
	}
	argv[a] = NULL;
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setenv("KUBUS_JOIN_TOKEN", ch->token, 1);
		execv(prog, (char *const *)argv);
		fprintf(stderr, "kubus: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	free(argv);
	return pid;
}

static void describe_status(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "status 0x%x", status);
}

static int64_t now_ms(void)
{
	return kb_now_ns() / 1000000;
}

static void *supervise_main(void *arg)
{
	struct kb_child *ch = arg;
	int backoff = BACKOFF_MIN_MS;
	for (;;) {
		int64_t started = now_ms();
		int status = 0;
		while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
			;
		char what[128];
		describe_status(status, what, sizeof(what));
		pthread_mutex_lock(&ch->mu);
		ch->exited = true;
		ch->status = status;
		ch->ready = false;
		pthread_cond_broadcast(&ch->cv);
		bool stopping = ch->stopping;
		pthread_mutex_unlock(&ch->mu);
		if (stopping)
			return NULL;
		kb_clog(KB_LOG_WARN, "isolated plugin exited; restarting",
		    "instance=%s pid=%d status=\"%s\" restart_in_ms=%d", ch->in->name,
		    (int)ch->pid, what, backoff);
		if (now_ms() - started > HEALTHY_MS)
			backoff = BACKOFF_MIN_MS;
		/* Sleep the backoff, but wake at once for a stop. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += backoff / 1000;
		ts.tv_nsec += (long)(backoff % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&ch->mu);
		while (!ch->stopping)
			if (pthread_cond_timedwait(&ch->cv, &ch->mu, &ts) == ETIMEDOUT)
				break;
		if (ch->stopping) {
			pthread_mutex_unlock(&ch->mu);
			return NULL;
		}
		ch->exited = false;
		ch->pid = spawn(ch);
		ch->restarts++;
		pthread_mutex_unlock(&ch->mu);
		if (ch->pid < 0) {
			kb_clog(KB_LOG_ERROR, "cannot restart isolated plugin", "instance=%s", ch->in->name);
			return NULL;
		}
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
}

static const char *ipc_url(struct kb_host *h)
{
	for (size_t i = 0;; i++) {
		const char *u = kb_net_listen_url(h->net, i);
		if (u == NULL)
			return NULL;
		if (strncmp(u, "ipc://", 6) == 0)
			return u;
	}
}

int kb_child_start(struct kb_inst *in, char *err, size_t errlen)
{
	struct kb_host *h = in->host;
	const char *url = ipc_url(h);
	if (url == NULL) {
		snprintf(err, errlen, "isolate needs an ipc:// bus listener (bus.listen)");
		return KB_EINVAL;
	}
	if (h->config_file == NULL) {
		snprintf(err, errlen, "isolate needs the host to run from a config file");
		return KB_EINVAL;
	}
	struct kb_child *ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return KB_ENOMEM;
	ch->in = in;
	pthread_mutex_init(&ch->mu, NULL);
	pthread_cond_init(&ch->cv, NULL);
	snprintf(ch->url, sizeof(ch->url), "%s", url);
	unsigned char raw[32];
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw)) {
		free(ch);
		return KB_ESYS;
	}
	for (int i = 0; i < 32; i++)
		sprintf(ch->token + 2 * i, "%02x", raw[i]);
	char user[192], kind[64];
	snprintf(user, sizeof(user), "plugin:%s", in->name);
	snprintf(kind, sizeof(kind), "kubus:kind:%s", kb_kind_name(in->desc->kind));
	const char *groups[] = { "kubus:plugins", kind };
	kb_auth_add_token(h->auth, ch->token, user, "", groups, 2);
	in->child = ch;
	ch->pid = spawn(ch);
	if (ch->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto out_free;
	}
	if (pthread_create(&ch->thread, NULL, supervise_main, ch) != 0) {
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, NULL, 0);
		snprintf(err, errlen, "cannot start its supervisor");
		goto out_free;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += READY_TIMEOUT_S;
	pthread_mutex_lock(&ch->mu);
	while (!ch->ready && !ch->exited)
		if (pthread_cond_timedwait(&ch->cv, &ch->mu, &ts) == ETIMEDOUT)
			break;
	bool ok = ch->ready;
	bool exited = ch->exited;
	int status = ch->status;
	pthread_mutex_unlock(&ch->mu);
	if (ok) {
		kb_clog(KB_LOG_INFO, "isolated plugin started", "instance=%s pid=%d",
		    in->name, (int)ch->pid);
		return 0;
	}
	char what[128] = "not ready in time";
	if (exited)
		describe_status(status, what, sizeof(what));
	snprintf(err, errlen, "child process %s before it was ready", what);
	kb_child_stop(in);
	return KB_EINTERNAL;
out_free:
	in->child = NULL;
	free(ch);
	return KB_ESYS;
}

void kb_child_ready(struct kb_host *h, const char *principal)
{
	for (size_t i = 0; i < h->ninsts; i++) {
		struct kb_inst *in = &h->insts[i];
		if (in->child == NULL || strncmp(principal, "plugin:", 7) ||
		    strcmp(principal + 7, in->name))
			continue;
		pthread_mutex_lock(&in->child->mu);
		in->child->ready = true;
		pthread_cond_broadcast(&in->child->cv);
		pthread_mutex_unlock(&in->child->mu);
		if (in->child->restarts)
			kb_clog(KB_LOG_INFO, "isolated plugin back", "instance=%s restarts=%d",
			    in->name, in->child->restarts);
	}
}

void kb_child_stop(struct kb_inst *in)
{
	struct kb_child *ch = in->child;
	if (ch == NULL)
		return;
	pthread_mutex_lock(&ch->mu);
	ch->stopping = true;
	pid_t pid = ch->exited ? 0 : ch->pid;
	pthread_cond_broadcast(&ch->cv);
	pthread_mutex_unlock(&ch->mu);
	if (pid > 0)
		kill(pid, SIGTERM);
	/* Give it 4 s to stop in order, then end it. */
	for (int i = 0; i < 400 && pid > 0; i++) {
		pthread_mutex_lock(&ch->mu);
		bool gone = ch->exited;
		pthread_mutex_unlock(&ch->mu);
		if (gone)
			break;
		if (i == 399)
			kill(pid, SIGKILL);
		usleep(10000);
	}
	pthread_join(ch->thread, NULL);
	pthread_mutex_destroy(&ch->mu);
	pthread_cond_destroy(&ch->cv);
	in->child = NULL;
	free(ch);
}
