/* crash.c — store-lmdb survives kill -9 with every acknowledged write.
 *
 * Each round forks a child that starts a host with store-lmdb (durable:
 * sync on, a small history window so compaction runs too) on one data dir,
 * and has THREADS clients put and delete through the bus as fast as they
 * can. After each acknowledgement the client writes a record to a pipe. At
 * a random moment the parent kill -9s the child, drains the pipe (what is
 * in it was acknowledged), reopens the store with the engine, and checks:
 * the databases agree (mvcc_check), the revision is at least every
 * acknowledged one, every key holds its last acknowledged write (or the
 * one write of its thread that was in flight), every acknowledged put still
 * reads back at its revision unless compacted, and revisions only grow
 * across rounds.
 *
 *     test-store-crash [rounds]     (default 20)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kubus/kubus.h>

#include "../harness.h"
#include "mvcc.h"

#define THREADS 8
#define SLOTS 4
#define MAXOPS 200000

struct ack {
	int64_t rev;
	int32_t thread;
	int32_t seq;
};

static int pipe_w;
static kb_ctx *client;
static int seq_base; /* ops of earlier rounds: seqs are unique per round */

static bool op_is_delete(int seq)
{
	return seq % 5 == 4;
}

static void key_of(char *buf, size_t cap, int t, int seq)
{
	snprintf(buf, cap, "/crash/%d/%d", t, seq % SLOTS);
}

/* value: "seq:<padding>", of a size that varies with seq */
static size_t value_of(char *buf, int seq)
{
	size_t n = (size_t)snprintf(buf, 32, "%d:", seq);
	size_t pad = (size_t)(seq * 7919 % 6000);
	memset(buf + n, 'a' + seq % 26, pad);
	return n + pad;
}

static void *child_writer(void *arg)
{
	int t = (int)(intptr_t)arg;
	char key[64], *val = malloc(8192);

	for (int seq = seq_base;; seq++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		kb_msg *rep = NULL;
		int rc;

		key_of(key, sizeof key, t, seq);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, op_is_delete(seq) ? 1 : 2);
		msgpack_pack_str(&pk, 3);
		msgpack_pack_str_body(&pk, "key", 3);
		msgpack_pack_str(&pk, strlen(key));
		msgpack_pack_str_body(&pk, key, strlen(key));
		if (!op_is_delete(seq)) {
			size_t n = value_of(val, seq);
			msgpack_pack_str(&pk, 5);
			msgpack_pack_str_body(&pk, "value", 5);
			msgpack_pack_bin(&pk, n);
			msgpack_pack_bin_body(&pk, val, n);
		}
		kb_body *b = kb_body_from_sbuf(&sb);
		msgpack_sbuffer_destroy(&sb);
		rc = kb_call(client, KB_STORE_SERVICE,
		    op_is_delete(seq) ? "delete" : "put", b, 30000, &rep);
		if (rc) {
			fprintf(stderr, "child: write failed: %s\n",
			    kb_strerror(rc));
			_exit(3);
		}
		int64_t rev = 0;
		kb_mp_int(kb_msg_body(rep), "rev", &rev);
		kb_msg_free(rep);
		struct ack a = { rev, t, seq };
		if (write(pipe_w, &a, sizeof a) != sizeof a)
			_exit(4);
	}
	return NULL;
}

static void child(const char *dir)
{
	char yaml[1024], err[512];
	const char *fe[] = { "kubus:plugins", "kubus:kind:frontend" };
	pthread_t th[THREADS];

	snprintf(yaml, sizeof yaml,
	    "host:\n"
	    "  data_dir: %s\n"
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-lmdb\n"
	    "    config:\n"
	    "      sync: true\n"
	    "      map_size: 1Mi\n"
	    "      history_revisions: 300\n"
	    "      compact_interval: 20ms\n",
	    dir);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof err);
	if (!h) {
		fprintf(stderr, "child: %s\n", err);
		_exit(2);
	}
	client = kbt_client(h, "crasher", "plugin:crasher", fe, 2);
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, child_writer, (void *)(intptr_t)t);
	for (;;)
		pause();
}

struct expect {
	int last[THREADS]; /* last acknowledged seq, -1 none */
	int64_t max_rev;
};

static struct ack acks[MAXOPS];

static int check_round(const char *path, int nacks, int64_t prev_rev,
    int64_t *rev_out, int round)
{
	struct mvcc_config cfg = { .path = path,
		.sync = true,
		.value_max = 1536 * 1024 };
	struct mvcc *m;
	struct mvcc_reader *r;
	char err[512];
	int last[THREADS], bad = 0;
	int64_t max_rev = 0;

	for (int t = 0; t < THREADS; t++)
		last[t] = -1;
	for (int i = 0; i < nacks; i++) {
		if (acks[i].seq > last[acks[i].thread])
			last[acks[i].thread] = acks[i].seq;
		if (acks[i].rev > max_rev)
			max_rev = acks[i].rev;
	}
	if (mvcc_open(&cfg, &m, err, sizeof err)) {
		fprintf(stderr, "round %d: reopen: %s\n", round, err);
		return 1;
	}
	if (mvcc_check(m, err, sizeof err)) {
		fprintf(stderr, "round %d: inconsistent: %s\n", round, err);
		mvcc_close(m);
		return 1;
	}
	if (mvcc_read_begin(m, &r)) {
		mvcc_close(m);
		return 1;
	}
	int64_t rev = mvcc_reader_rev(r), compact = mvcc_reader_compact_rev(r);
	if (rev < max_rev || rev < prev_rev) {
		fprintf(stderr,
		    "round %d: revision %lld, but %lld was "
		    "acknowledged (previous round ended at %lld)\n",
		    round, (long long)rev, (long long)max_rev,
		    (long long)prev_rev);
		bad++;
	}
	/* each key: its last acknowledged write, or its thread's next one */
	for (int t = 0; t < THREADS && !bad; t++) {
		if (last[t] < 0)
			continue;
		for (int s = 0; s < SLOTS; s++) {
			int acked = -1, inflight = -1;
			for (int q = last[t];
			     q >= seq_base && q > last[t] - SLOTS; q--)
				if (q % SLOTS == s) {
					acked = q;
					break;
				}
			if ((last[t] + 1) % SLOTS == s)
				inflight = last[t] + 1;
			if (acked < 0)
				continue; /* slot untouched this round */
			char key[64], *want = malloc(8192);
			struct mvcc_kv kv;
			bool found;
			key_of(key, sizeof key, t, s);
			if (mvcc_get(r, key, strlen(key), 0, &kv, &found)) {
				bad++;
				free(want);
				break;
			}
			bool match = false;
			int cands[2] = { acked, inflight };
			for (int c = 0; c < 2 && !match; c++) {
				int q = cands[c];
				if (q < 0)
					continue;
				if (op_is_delete(q)) {
					match = !found;
				} else if (found) {
					size_t n = value_of(want, q);
					match = kv.value_len == n &&
					    !memcmp(kv.value, want, n);
				}
			}
			free(want);
			if (!match) {
				fprintf(stderr,
				    "round %d: %s does not hold write "
				    "%d (or %d)\n",
				    round, key, acked, inflight);
				bad++;
			}
		}
	}
	/* every acknowledged put reads back at its revision */
	for (int i = 0; i < nacks && !bad; i++) {
		struct mvcc_kv kv;
		bool found;
		char key[64], *want;
		if (op_is_delete(acks[i].seq) || acks[i].rev < compact)
			continue;
		key_of(key, sizeof key, acks[i].thread, acks[i].seq);
		if (mvcc_get(r, key, strlen(key), acks[i].rev, &kv, &found) ||
		    !found) {
			fprintf(stderr, "round %d: %s at %lld is gone\n", round,
			    key, (long long)acks[i].rev);
			bad++;
			break;
		}
		want = malloc(8192);
		size_t n = value_of(want, acks[i].seq);
		if (kv.value_len != n || memcmp(kv.value, want, n) ||
		    kv.mod_rev != acks[i].rev) {
			fprintf(stderr,
			    "round %d: %s at %lld holds another "
			    "value\n",
			    round, key, (long long)acks[i].rev);
			bad++;
		}
		free(want);
	}
	mvcc_read_end(r);
	mvcc_close(m);
	*rev_out = rev;
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20, failed = 0;
	char *dir = kbt_mkdtemp("crash"), path[1024];
	int64_t rev = 0;
	long total = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	snprintf(path, sizeof path, "%s/store-lmdb", dir);
	for (int round = 1; round <= rounds && !failed; round++) {
		int fds[2];
		pid_t pid;

		if (pipe(fds))
			return 1;
		fflush(NULL);
		if ((pid = fork()) == 0) {
			close(fds[0]);
			pipe_w = fds[1];
			child(dir);
		}
		close(fds[1]);
		/* wait for the first acknowledgement, then a random while */
		size_t have = 0;
		int nacks = 0;
		struct timespec t0, now;
		long kill_after = 30 + rand_r(&seed) % 400; /* ms */
		bool killed = false;
		fcntl(fds[0], F_SETFL, O_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			char *p = (char *)acks + have;
			ssize_t n = read(fds[0], p, sizeof acks - have);
			if (n > 0) {
				have += (size_t)n;
				if (have >= sizeof acks)
					break;
				continue;
			}
			if (n == 0)
				break; /* child gone */
			if (errno != EAGAIN)
				break;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (now.tv_sec - t0.tv_sec) * 1000 +
			    (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (!killed && have > 0 && ms >= kill_after) {
				kill(pid, SIGKILL);
				killed = true;
			}
			if (!killed && ms > 20000) {
				fprintf(stderr, "round %d: no writes in 20 s\n",
				    round);
				kill(pid, SIGKILL);
				killed = true;
				failed = 1;
			}
			usleep(1000);
		}
		int st;
		waitpid(pid, &st, 0);
		close(fds[0]);
		nacks = (int)(have / sizeof acks[0]);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
			fprintf(stderr,
			    "round %d: the child ended by itself "
			    "(status %d)\n",
			    round, st);
			failed = 1;
			break;
		}
		int64_t before = rev;
		if (check_round(path, nacks, before, &rev, round))
			failed = 1;
		printf("round %2d: killed after %4ld ms, %5d writes "
		       "acknowledged, store at revision %lld: %s\n",
		    round, kill_after, nacks, (long long)rev,
		    failed ? "BAD" : "ok");
		total += nacks;
		int maxseq = seq_base;
		for (int i = 0; i < nacks; i++)
			if (acks[i].seq >= maxseq)
				maxseq = acks[i].seq + 1;
		/* next round's seqs start past anything in flight */
		seq_base = maxseq + SLOTS * 2 + 10;
		seq_base += SLOTS - seq_base % SLOTS;
	}
	printf("%s: %ld acknowledged writes over the rounds\n",
	    failed ? "FAIL" : "PASS", total);
	if (!failed)
		kbt_rmrf(dir);
	else
		fprintf(stderr, "store kept in %s\n", dir);
	free(dir);
	return failed;
}
