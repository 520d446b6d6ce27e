/* plugins/store-etcd/client.c — one JSON call to etcd's v3 gateway, with
 * failover across the configured members.
 *
 * Retrying is where a client can lose or duplicate writes, so each call
 * says how it may be repeated (enum ec_retry):
 *   - a request that surely did not reach etcd (connection refused, nothing
 *     sent, "no leader", "too many requests") is retried on the next member
 *     whatever it is;
 *   - a request that may have been applied (sent, then the connection broke
 *     or timed out, or etcd said "request timed out") is retried only when
 *     the caller says a repeat is harmless: reads, and writes whose txn
 *     compares make the second application impossible (kv.c then tells a
 *     "Conflict" caused by our own first attempt from a real one);
 *   - otherwise the caller gets KB_ETIMEOUT "outcome unknown", as etcd's
 *     own clientv3 does.
 */
#include "etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESP_MAX (512u * 1024 * 1024)

int64_t ec_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ec_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct ec_conn *cn = arg;
	size_t len = sz * n;
	if (cn->len + len + 1 > cn->cap) {
		size_t cap = cn->cap ? cn->cap : 4096;
		while (cap < cn->len + len + 1)
			cap *= 2;
		if (cap > RESP_MAX)
			return 0;
		char *b = realloc(cn->buf, cap);
		if (!b)
			return 0;
		cn->buf = b;
		cn->cap = cap;
	}
	memcpy(cn->buf + cn->len, p, len);
	cn->len += len;
	cn->buf[cn->len] = '\0';
	return len;
}

static int on_prereq(void *arg, char *ip, char *local_ip, int port,
    int local_port)
{
	struct ec_conn *cn = arg;
	cn->sends++;
	return CURL_PREREQFUNC_OK;
}

int ec_client_init(struct ec_client *c, const struct ec_conf *conf,
    char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	c->conf = conf;
	int n = 0;
	while (conf->endpoints && conf->endpoints[n])
		n++;
	if (n == 0) {
		snprintf(err, errlen, "no etcd endpoints configured");
		return KB_EINVAL;
	}
	c->eps = calloc((size_t)n, sizeof *c->eps);
	if (!c->eps)
		return KB_ENOMEM;
	for (int i = 0; i < n; i++) {
		const char *e = conf->endpoints[i];
		if (strncmp(e, "http://", 7) != 0 &&
		    strncmp(e, "https://", 8) != 0) {
			snprintf(err, errlen,
			    "endpoint `%s`: expected http://HOST:PORT or "
			    "https://HOST:PORT", e);
			c->neps = i;
			ec_client_destroy(c);
			return KB_EINVAL;
		}
		size_t l = strlen(e);
		while (l > 0 && e[l - 1] == '/')
			l--;
		c->eps[i] = strndup(e, l);
		if (!c->eps[i]) {
			c->neps = i;
			ec_client_destroy(c);
			return KB_ENOMEM;
		}
	}
	c->neps = n;
	atomic_init(&c->cur, 0);
	return 0;
}

void ec_client_destroy(struct ec_client *c)
{
	for (int i = 0; i < c->neps; i++)
		free(c->eps[i]);
	free(c->eps);
	c->eps = NULL;
	c->neps = 0;
}

void ec_client_setopts(struct ec_client *c, CURL *h)
{
	const struct ec_conf *cf = c->conf;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cf->dial_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Only the configured members: never follow a redirect elsewhere. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cf->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, cf->cacert);
	if (cf->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, cf->cert);
	if (cf->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, cf->key);
}

int ec_conn_init(struct ec_conn *cn)
{
	memset(cn, 0, sizeof *cn);
	cn->h = curl_easy_init();
	if (!cn->h)
		return KB_ENOMEM;
	/* "Expect:" off: curl would wait for 100-continue on big bodies. */
	cn->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *h2 = cn->hdrs ?
	    curl_slist_append(cn->hdrs, "Expect:") : NULL;
	if (!h2) {
		ec_conn_destroy(cn);
		return KB_ENOMEM;
	}
	cn->hdrs = h2;
	return 0;
}

void ec_conn_destroy(struct ec_conn *cn)
{
	if (cn->h)
		curl_easy_cleanup(cn->h);
	curl_slist_free_all(cn->hdrs);
	free(cn->buf);
	memset(cn, 0, sizeof *cn);
}

/* Did the exchange fail in TLS (our certificates or files, the member's
 * certificate, or the member refusing ours)? Such a request never reached
 * etcd. With TLS 1.3 a server that rejects the client certificate says so
 * with an alert that curl only sees at its first read, after it "sent" the
 * request: the alert in curl's error text tells it from a broken stream. */
static bool tls_failure(CURLcode cr, const char *detail)
{
	switch (cr) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
#if LIBCURL_VERSION_NUM >= 0x074d00 /* 7.77.0 */
	case CURLE_SSL_CLIENTCERT:
#endif
		return true;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return strstr(detail, "alert") && (strstr(detail, "certificate") ||
		    strstr(detail, "unknown ca"));
	default:
		return false;
	}
}

/* Did the last exchange on h open a connection and get not a byte of a
 * reply (headers or body) on it? */
static bool new_conn_unanswered(CURL *h, size_t body_len)
{
	long conns = 0, hdr_len = 0;
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
	curl_easy_getinfo(h, CURLINFO_HEADER_SIZE, &hdr_len);
	return conns > 0 && hdr_len == 0 && body_len == 0;
}

/* Did a request sent once, on a new https connection, fail in sending or
 * in receiving before a byte of the reply came? That is how a TLS 1.3
 * member that refuses our certificate may answer too: it checks the
 * certificate only after we "sent" the request, and its alert can be lost
 * behind a TCP reset. A request that went out first on a reused keep-alive
 * connection (curl then sends it again on a new one) never qualifies: the
 * member had answered on that connection (conn_forget). */
static bool broken_new_session(CURL *h, CURLcode cr, const char *url, int sends,
    size_t body_len)
{
	return (cr == CURLE_SEND_ERROR || cr == CURLE_RECV_ERROR) &&
	    strncmp(url, "https://", 8) == 0 && sends == 1 &&
	    new_conn_unanswered(h, body_len);
}

/* Drop every connection of cn's handle. curl keeps an HTTP/2 connection
 * whose session the member refused, and would send the next request on it
 * first; forgetting each connection that never answered keeps the rule
 * that a reused connection is one the member accepted. A copy of a handle
 * has its options and none of its connections. On failure the old handle
 * stays: a request may then go out on the broken connection first, which
 * broken_new_session() counts as maybe applied. */
static void conn_forget(struct ec_conn *cn)
{
	CURL *h = curl_easy_duphandle(cn->h);
	if (!h)
		return;
	curl_easy_cleanup(cn->h);
	cn->h = h;
}

static size_t probe_data(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	*(size_t *)arg += sz * n;
	return sz * n;
}

/* Does member `ep` refuse a new TLS session with our credentials? Asks
 * GET /version, which changes nothing, on a connection of its own (a
 * handle of its own: no cached connection or session), within tmo_ms.
 * When it does, `why` gets curl's detail of the refusal. */
static bool member_refuses_tls(struct ec_client *c, const char *ep, long tmo_ms,
    char *why, size_t whylen)
{
	char url[512], eb[CURL_ERROR_SIZE] = "";
	size_t got = 0;
	CURL *p = curl_easy_init();
	if (!p)
		return false;
	snprintf(url, sizeof url, "%s/version", ep);
	ec_client_setopts(c, p);
	curl_easy_setopt(p, CURLOPT_URL, url);
	curl_easy_setopt(p, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(p, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(p, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(p, CURLOPT_TIMEOUT_MS, tmo_ms);
	curl_easy_setopt(p, CURLOPT_WRITEFUNCTION, probe_data);
	curl_easy_setopt(p, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(p, CURLOPT_ERRORBUFFER, eb);
	CURLcode cr = curl_easy_perform(p);
	/* Its own handle, FRESH_CONNECT: sent once, on a new connection. */
	bool refused = cr != CURLE_OK &&
	    (tls_failure(cr, eb) || broken_new_session(p, cr, url, 1, got));
	if (refused)
		snprintf(why, whylen, "%s",
		    eb[0] ? eb : curl_easy_strerror(cr));
	curl_easy_cleanup(p);
	return refused;
}

enum verdict {
	V_FINAL,     /* an answer: return it */
	V_SAFE,      /* transient, surely not applied: retry */
	V_UNKNOWN,   /* transient, maybe applied */
};

/* Classify an error reply from the gateway. */
static enum verdict classify(long status, const json_t *j, int *code,
    const char **msg)
{
	const char *m = json_string_value(json_object_get(j, "message"));
	if (!m)
		m = json_string_value(json_object_get(j, "error"));
	if (!m)
		m = "";
	*msg = m;
	int64_t g = ec_jint(j, "code");
	if (strstr(m, "required revision has been compacted")) {
		*code = KB_EEXPIRED;
		return V_FINAL;
	}
	if (strstr(m, "future revision")) {
		*code = KB_EINVAL;
		return V_FINAL;
	}
	if (strstr(m, "no leader") || strstr(m, "too many requests") ||
	    strstr(m, "not capable") || strstr(m, "not supported")) {
		*code = KB_EUNAVAILABLE;
		return V_SAFE;
	}
	if (g == 3 /* InvalidArgument */ || strstr(m, "too large") ||
	    strstr(m, "duplicate key")) {
		*code = KB_EINVAL;
		return V_FINAL;
	}
	if (g == 8 /* ResourceExhausted: e.g. the space quota */) {
		*code = KB_ETOOMANY;
		return V_FINAL;
	}
	if (g == 14 /* Unavailable */ || g == 4 /* DeadlineExceeded */ ||
	    g == 1 /* Canceled */ || status == 502 || status == 503 ||
	    status == 504 || strstr(m, "timed out") ||
	    strstr(m, "leader changed") || strstr(m, "stopped")) {
		*code = KB_EUNAVAILABLE;
		return V_UNKNOWN;
	}
	*code = KB_EINTERNAL;
	return V_FINAL;
}

int ec_call(struct ec_client *c, struct ec_conn *cn, const char *path,
    json_t *req, enum ec_retry retry, int64_t deadline_ms, json_t **resp,
    bool *unknown, struct ec_out *o)
{
	*resp = NULL;
	if (unknown)
		*unknown = false;
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body)
		return ec_out_err(o, KB_ENOMEM, "out of memory");
	if (deadline_ms <= 0)
		deadline_ms = ec_now_ms() + c->conf->retry_timeout_ms;

	CURL *h = cn->h;
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, cn->hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, cn);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cn->errbuf);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, cn);

	int start = atomic_load(&c->cur);
	int rc = KB_EUNAVAILABLE;
	char last[300] = "no attempt";
	/* The last TLS failure: the reason to report even when a later
	 * attempt failed vaguely (a server that refuses our certificate may
	 * also just drop the connection: "getpeername() failed"). */
	char tls_last[300] = "";
	int backoff = 50;
	for (int attempt = 0;; attempt++) {
		int idx = (start + attempt) % c->neps;
		char url[512];
		snprintf(url, sizeof url, "%s%s", c->eps[idx], path);
		int64_t left = deadline_ms - ec_now_ms();
		long tmo = (long)(left < c->conf->request_timeout_ms ?
		    left : c->conf->request_timeout_ms);
		if (tmo < 50)
			tmo = 50;
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
		cn->len = 0;
		if (cn->buf)
			cn->buf[0] = '\0';
		cn->errbuf[0] = '\0';
		cn->sends = 0;
		CURLcode cr = curl_easy_perform(h);
		enum verdict v;
		int code = KB_EUNAVAILABLE;
		if (cr == CURLE_OK) {
			long st = 0;
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
			json_error_t je;
			json_t *j = cn->len ?
			    json_loadb(cn->buf, cn->len, 0, &je) : NULL;
			if (st == 200 && json_is_object(j)) {
				*resp = j;
				if (idx != start)
					atomic_store(&c->cur, idx);
				free(body);
				return 0;
			}
			const char *m = "";
			if (json_is_object(j)) {
				v = classify(st, j, &code, &m);
			} else {
				/* Not etcd's JSON: a proxy, or a member going
				 * down. Treat as maybe applied. */
				v = st >= 500 || st == 0 ? V_UNKNOWN : V_FINAL;
				code = v == V_FINAL ? KB_EINTERNAL :
				    KB_EUNAVAILABLE;
				m = "unexpected reply";
			}
			snprintf(last, sizeof last, "%.120s: HTTP %ld: %.150s", url, st,
			    m);
			json_decref(j);
			if (v == V_FINAL) {
				free(body);
				return ec_out_err(o, code, "etcd %.300s", last);
			}
		} else {
			curl_off_t sent = 0;
			curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
			bool tls = tls_failure(cr, cn->errbuf);
			char probe[CURL_ERROR_SIZE] = "";
			/* Broken before any reply on a new session: if the
			 * member refuses a new session of ours too, it refuses
			 * every session with our credentials, so it cannot have
			 * processed this request. */
			if (!tls && broken_new_session(h, cr, url, cn->sends,
			    cn->len)) {
				int64_t pl = deadline_ms - ec_now_ms();
				if (pl > c->conf->dial_timeout_ms)
					pl = c->conf->dial_timeout_ms;
				tls = member_refuses_tls(c, c->eps[idx],
				    pl < 50 ? 50 : (long)pl, probe,
				    sizeof probe);
			}
			bool not_sent = tls || cr == CURLE_COULDNT_CONNECT ||
			    cr == CURLE_COULDNT_RESOLVE_HOST || sent == 0;
			v = not_sent ? V_SAFE : V_UNKNOWN;
			const char *d = cn->errbuf[0] ? cn->errbuf :
			    curl_easy_strerror(cr);
			if (probe[0])
				snprintf(last, sizeof last,
				    "%.100s: TLS failed: %.70s; a new session "
				    "too: %.90s", url, d, probe);
			else
				snprintf(last, sizeof last, "%.120s: %s%.160s",
				    url, tls ? "TLS failed: " : "", d);
			if (tls)
				memcpy(tls_last, last, sizeof last);
			if (new_conn_unanswered(h, cn->len)) {
				conn_forget(cn);
				h = cn->h;
			}
		}
		if (v == V_UNKNOWN) {
			if (retry == EC_ONCE) {
				free(body);
				return ec_out_err(o, KB_ETIMEOUT,
				    "etcd write outcome unknown (%.280s)", last);
			}
			if (unknown)
				*unknown = true;
		}
		rc = unknown && *unknown ? KB_ETIMEOUT : code;
		if (c->log) {
			char lm[400];
			snprintf(lm, sizeof lm, "etcd member failed, trying the "
			    "next: %.300s", last);
			c->log(c->log_arg, 1 /* warn */, lm);
		}
		/* Move new calls off the failed member. */
		int exp = idx;
		atomic_compare_exchange_strong(&c->cur, &exp,
		    (idx + 1) % c->neps);
		if ((attempt + 1) % c->neps == 0) {
			if (ec_now_ms() + backoff >= deadline_ms)
				break;
			ec_sleep_ms(backoff);
			backoff = backoff * 2 > 500 ? 500 : backoff * 2;
		}
		if (ec_now_ms() >= deadline_ms)
			break;
	}
	free(body);
	return ec_out_err(o, rc, "etcd unavailable%s (last: %.260s)",
	    rc == KB_ETIMEOUT ? ", write outcome unknown" : "",
	    tls_last[0] ? tls_last : last);
}
