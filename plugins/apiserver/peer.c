/* plugins/apiserver/peer.c — the API servers of one cluster, to each
 * other.
 *
 * A control-plane host reaches a worker's kubelet (`kubelet/NODE` on its
 * bus) only when that worker's uplink is on it. So that `kubectl logs`
 * works through every API server of an HA cluster, each API server:
 *
 *   - keeps a Lease `apiserver-<host>` in kube-system, labelled
 *     apiserver.kubernetes.io/identity=kube-apiserver as kube-apiserver's
 *     identity Leases are, with the URL its peers reach it at in the
 *     annotation kubus.io/peer-endpoint, renewed every PEER_RENEW_S;
 *   - when its own bus has no route to `kubelet/NODE`, asks the peers with
 *     a live Lease in turn for the same pod log over HTTPS, and relays the
 *     first answer that is not 503 (a stream for follow=true);
 *   - proves itself to them with a bearer token that only holders of the
 *     cluster's API CA key can make: HMAC-SHA256 of a fixed label keyed
 *     with DATA_DIR/apiserver/ca.key, which every control-plane host
 *     shares. It checks the peer's serving certificate against that CA.
 *
 * The user's rights are checked where the user came in; a peer token is
 * good for reading pod logs and nothing else (http.c), and a request that
 * came from a peer is never forwarded again, so there are no loops.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <kubus/client.h>

#include "server.h"

#define PEER_RENEW_S 10
#define PEER_LEASE_S 30 /* a peer not heard of this long is not asked */
#define PEER_CONNECT_MS 3000
#define PEER_STREAM_BUF (1u << 20) /* a follow stream buffers this much */
#define PEER_BODY_MAX (64u << 20)  /* a whole log, not followed */
#define PEER_TOKEN_PREFIX "kubus-peer."
#define PEER_LABEL "apiserver.kubernetes.io/identity"
#define PEER_ANNOTATION "kubus.io/peer-endpoint"

struct api_peer {
	struct api_server *s;
	char name[80];    /* the Lease's name */
	char holder[128]; /* its holderIdentity */
	char url[320];    /* https://HOST:PORT this server is reached at */
	char token[128];  /* what it sends its peers */
	char *ca_pem;     /* the API CA, to check peers with */
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, running;
};

/* --- the token ------------------------------------------------------------------ */

static int make_token(const char *dir, char *out, size_t len, char *err,
    size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot read the API CA key", path);
		return -1;
	}
	unsigned char key[16384];
	size_t n = fread(key, 1, sizeof(key), f);
	fclose(f);
	static const char label[] = "kubus apiserver peer v1";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char *ok = n ? HMAC(EVP_sha256(), key, (int)n,
					(const unsigned char *)label,
					sizeof(label) - 1, md, &mdlen) :
				NULL;
	OPENSSL_cleanse(key, sizeof(key));
	if (ok == NULL || len < sizeof(PEER_TOKEN_PREFIX) + 2 * mdlen) {
		snprintf(err, errlen, "%s: cannot derive the peer token", path);
		return -1;
	}
	size_t off = (size_t)snprintf(out, len, "%s", PEER_TOKEN_PREFIX);
	for (unsigned int i = 0; i < mdlen; i++)
		off += (size_t)snprintf(out + off, len - off, "%02x", md[i]);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

bool api_peer_token_like(const char *tok)
{
	return tok && !strncmp(tok, PEER_TOKEN_PREFIX,
			      sizeof(PEER_TOKEN_PREFIX) - 1);
}

bool api_peer_token_ok(struct api_server *s, const char *tok)
{
	struct api_peer *p = s->peer;
	if (p == NULL || tok == NULL || strlen(tok) != strlen(p->token))
		return false;
	return CRYPTO_memcmp(tok, p->token, strlen(p->token)) == 0;
}

/* --- the Lease ------------------------------------------------------------------- */

static const struct api_user *system_user(void)
{
	static char *const groups[] = { "system:masters" };
	static const struct api_user u = { .name = "system:apiserver",
		.uid = "",
		.groups = (char **)groups,
		.ngroups = 1 };
	return &u;
}

static void micro_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char base[40];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%06dZ", base, (int)(ts.tv_nsec / 1000 % 1000000));
}

/* RFC 3339 to unix seconds; -1 when unreadable. */
static int64_t parse_time(const char *s)
{
	int64_t ms;
	return s && kb_time_parse(s, strlen(s), &ms) ? ms / 1000 : -1;
}

static void lease_req(struct api_peer *p, struct api_req *req, int verb)
{
	memset(req, 0, sizeof(*req));
	req->srv = p->s;
	req->verb = verb;
	req->res = api_resource_find("coordination.k8s.io", "v1", "leases");
	req->ns = strdup("kube-system");
	req->user = system_user();
	req->tail_lines = req->since_seconds = req->limit_bytes = -1;
}

static void lease_renew(struct api_peer *p)
{
	char now[48];
	micro_now(now, sizeof(now));
	struct api_req req;
	struct api_resp resp = { 0 };
	lease_req(p, &req, API_GET);
	req.name = strdup(p->name);
	if (req.res == NULL || req.ns == NULL || req.name == NULL)
		goto out;
	api_handle(&req, &resp);
	json_t *obj = NULL;
	if (resp.code == 200 && json_is_object(resp.json)) {
		obj = json_incref(resp.json);
		req.verb = API_UPDATE;
	} else if (resp.code == 404) {
		obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{}}", "apiVersion",
		    "coordination.k8s.io/v1", "kind", "Lease", "metadata",
		    "name", p->name, "namespace", "kube-system", "spec");
		req.verb = API_CREATE;
		free(req.name);
		req.name = NULL;
	}
	api_resp_free(&resp);
	memset(&resp, 0, sizeof(resp));
	if (obj == NULL)
		goto out;
	json_t *md = json_object_get(obj, "metadata");
	json_t *spec = json_object_get(obj, "spec");
	json_t *labels = json_object_get(md, "labels");
	json_t *ann = json_object_get(md, "annotations");
	if (!json_is_object(labels)) {
		labels = json_object();
		json_object_set_new(md, "labels", labels);
	}
	if (!json_is_object(ann)) {
		ann = json_object();
		json_object_set_new(md, "annotations", ann);
	}
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(obj, "spec", spec);
	}
	json_object_set_new(labels, PEER_LABEL, json_string("kube-apiserver"));
	json_object_set_new(ann, PEER_ANNOTATION, json_string(p->url));
	const char *held = json_string_value(json_object_get(spec, "holderIdentity"));
	if (held == NULL || strcmp(held, p->holder) != 0) {
		json_object_set_new(spec, "holderIdentity", json_string(p->holder));
		json_object_set_new(spec, "acquireTime", json_string(now));
	}
	json_object_set_new(spec, "leaseDurationSeconds", json_integer(PEER_LEASE_S));
	json_object_set_new(spec, "renewTime", json_string(now));
	req.body = obj;
	api_handle(&req, &resp);
	if (resp.code != 200 && resp.code != 201)
		kb_warn(p->s->ctx, "apiserver Lease not renewed",
		    "lease=kube-system/%s code=%d message=\"%s\"", p->name,
		    resp.code, api_get_str(resp.json, "message") ?: "");
out:
	api_resp_free(&resp);
	api_req_free(&req);
}

static void *lease_main(void *arg)
{
	struct api_peer *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		pthread_mutex_unlock(&p->mu);
		lease_renew(p);
		pthread_mutex_lock(&p->mu);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += PEER_RENEW_S;
		while (!p->stop &&
		    pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* The other API servers' URLs, from their live Leases: a NULL-ended
 * array (malloc'd, each string too), or NULL when there are none. */
static char **peer_urls(struct api_peer *p)
{
	struct api_req req;
	struct api_resp resp = { 0 };
	lease_req(p, &req, API_LIST);
	req.label_selector = strdup(PEER_LABEL "=kube-apiserver");
	char **out = NULL;
	size_t n = 0;
	if (req.res && req.ns && req.label_selector)
		api_handle(&req, &resp);
	json_t *items = json_object_get(resp.json, "items");
	int64_t now = (int64_t)time(NULL);
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		const char *name = api_get_str(it, "metadata.name");
		json_t *ann = api_get(it, "metadata.annotations");
		const char *url =
		    json_string_value(json_object_get(ann, PEER_ANNOTATION));
		int64_t renew = parse_time(api_get_str(it, "spec.renewTime"));
		json_t *dur = api_get(it, "spec.leaseDurationSeconds");
		int64_t d = json_is_integer(dur) ? json_integer_value(dur) :
						   PEER_LEASE_S;
		if (name == NULL || !strcmp(name, p->name) || url == NULL ||
		    strncmp(url, "https://", 8) || renew < 0 || renew + d < now)
			continue;
		char **grown = realloc(out, (n + 2) * sizeof(*out));
		if (grown == NULL)
			break;
		out = grown;
		if ((out[n] = strdup(url)) == NULL)
			break;
		out[++n] = NULL;
	}
	api_resp_free(&resp);
	api_req_free(&req);
	return out;
}

static void urls_free(char **u)
{
	for (size_t i = 0; u && u[i]; i++)
		free(u[i]);
	free(u);
}

/* --- one HTTPS call to a peer ------------------------------------------------------ */

struct xfer {
	CURLM *m;
	CURL *e;
	struct curl_slist *hdr;
	char *buf;
	size_t len, pos, max;
	bool headers_done, done, paused, too_big;
	CURLcode result;
	long code;
	bool json;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (len >= 13 && !strncasecmp(line, "content-type:", 13)) {
		const char *v = line + 13;
		v += strspn(v, " \t");
		x->json = !strncasecmp(v, "application/json", 16);
	}
	if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		long code = 0;
		curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200) {
			x->code = code;
			x->headers_done = true;
		}
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (x->len - x->pos + len > x->max) {
		if (x->max == PEER_STREAM_BUF && x->len > x->pos) {
			x->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		x->too_big = true;
		return 0;
	}
	if (x->pos && x->pos == x->len)
		x->pos = x->len = 0;
	char *nb = realloc(x->buf, x->len + len + 1);
	if (nb == NULL)
		return 0;
	x->buf = nb;
	memcpy(x->buf + x->len, data, len);
	x->len += len;
	x->buf[x->len] = '\0';
	return len;
}

static void xfer_free(struct xfer *x)
{
	if (x == NULL)
		return;
	if (x->m && x->e)
		curl_multi_remove_handle(x->m, x->e);
	if (x->e)
		curl_easy_cleanup(x->e);
	if (x->m)
		curl_multi_cleanup(x->m);
	curl_slist_free_all(x->hdr);
	free(x->buf);
	free(x);
}

static struct xfer *xfer_open(struct api_peer *p, const char *url,
    bool follow)
{
	struct xfer *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	x->max = follow ? PEER_STREAM_BUF : PEER_BODY_MAX;
	x->m = curl_multi_init();
	x->e = curl_easy_init();
	char auth[200];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->token);
	struct curl_slist *h = curl_slist_append(NULL, auth);
	OPENSSL_cleanse(auth, sizeof(auth));
	if (h)
		x->hdr = h;
	if (h && (h = curl_slist_append(x->hdr, "Accept: */*")) != NULL)
		x->hdr = h;
	if (x->m == NULL || x->e == NULL || h == NULL) {
		xfer_free(x);
		return NULL;
	}
	struct curl_blob ca = { .data = p->ca_pem,
		.len = strlen(p->ca_pem),
		.flags = CURL_BLOB_COPY };
	curl_easy_setopt(x->e, CURLOPT_URL, url);
	curl_easy_setopt(x->e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(x->e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, x->hdr);
	curl_easy_setopt(x->e, CURLOPT_CAINFO_BLOB, &ca);
	curl_easy_setopt(x->e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(x->e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->e, CURLOPT_CONNECTTIMEOUT_MS, (long)PEER_CONNECT_MS);
	curl_easy_setopt(x->e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (!follow)
		curl_easy_setopt(x->e, CURLOPT_TIMEOUT_MS,
		    (long)p->s->request_timeout_ms);
	curl_easy_setopt(x->e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(x->e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->e, CURLOPT_ERRORBUFFER, x->errbuf);
	if (curl_multi_add_handle(x->m, x->e) != CURLM_OK) {
		xfer_free(x);
		return NULL;
	}
	return x;
}

/* Move the transfer on, waiting up to ms for something to happen. */
static void xfer_pump(struct xfer *x, int ms)
{
	int running = 0;
	if (x->done)
		return;
	curl_multi_perform(x->m, &running);
	if (running) {
		curl_multi_poll(x->m, NULL, 0, ms > 0 ? ms : 0, NULL);
		curl_multi_perform(x->m, &running);
	}
	if (!running) {
		int left;
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(x->m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				x->result = msg->data.result;
		x->done = true;
		if (!x->headers_done && x->result == CURLE_OK)
			x->result = CURLE_RECV_ERROR;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the answer's headers (wait_all: its whole body) or the end.
 * false when the server stops meanwhile. */
static bool xfer_wait(struct api_server *s, struct xfer *x, bool wait_all,
    int64_t deadline)
{
	while (!x->done && (wait_all || !x->headers_done)) {
		if (s->stopping || now_ms() > deadline)
			return false;
		xfer_pump(x, 100);
	}
	return true;
}

static const char *xfer_error(const struct xfer *x)
{
	if (x->too_big)
		return "answer too large";
	if (x->errbuf[0])
		return x->errbuf;
	return curl_easy_strerror(x->result);
}

/* --- a log stream relayed from a peer ------------------------------------------------ */

struct peer_stream {
	struct api_stream st; /* first: the HTTP layer's handle */
	struct api_server *srv;
	struct xfer *x;
};

static ssize_t peer_read(struct api_stream *st, char *buf, size_t max,
    int timeout_ms)
{
	struct peer_stream *ps = (struct peer_stream *)st;
	struct xfer *x = ps->x;
	int64_t until = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		if (ps->srv->stopping)
			return -1;
		if (x->pos < x->len) {
			size_t n = x->len - x->pos;
			if (n > max)
				n = max;
			memcpy(buf, x->buf + x->pos, n);
			x->pos += n;
			if (x->pos == x->len) {
				x->pos = x->len = 0;
				if (x->paused) {
					x->paused = false;
					curl_easy_pause(x->e, CURLPAUSE_CONT);
				}
			}
			return (ssize_t)n;
		}
		if (x->done)
			return -1;
		int64_t left = until - now_ms();
		if (left <= 0)
			return 0;
		xfer_pump(x, left < 100 ? (int)left : 100);
	}
}

static void peer_close(struct api_stream *st)
{
	struct peer_stream *ps = (struct peer_stream *)st;
	xfer_free(ps->x);
	free(ps);
}

/* --- asking the peers ---------------------------------------------------------------- */

/* curl_easy_escape ignores its handle (curl 7.82 and later). */
static void query_add(char *q, size_t len, const char *k, const char *v)
{
	char *ev = curl_easy_escape(NULL, v, 0);
	size_t off = strlen(q);
	if (ev)
		snprintf(q + off, len - off, "%s%s=%s", off ? "&" : "?", k, ev);
	curl_free(ev);
}

static void query_int(char *q, size_t len, const char *k, int64_t v)
{
	char b[32];
	if (v < 0)
		return;
	snprintf(b, sizeof(b), "%lld", (long long)v);
	query_add(q, len, k, b);
}

/* The URL of req's log on the peer at base. */
static char *log_url(const char *base, const struct api_req *req,
    const char *container)
{
	char q[2048] = "";
	if (container && *container)
		query_add(q, sizeof(q), "container", container);
	if (req->follow)
		query_add(q, sizeof(q), "follow", "true");
	if (req->previous)
		query_add(q, sizeof(q), "previous", "true");
	if (req->timestamps)
		query_add(q, sizeof(q), "timestamps", "true");
	query_int(q, sizeof(q), "tailLines", req->tail_lines);
	query_int(q, sizeof(q), "sinceSeconds", req->since_seconds);
	query_int(q, sizeof(q), "limitBytes", req->limit_bytes);
	char *ns = curl_easy_escape(NULL, req->ns, 0);
	char *name = curl_easy_escape(NULL, req->name, 0);
	size_t len = strlen(base) + strlen(q) + 64 + (ns ? strlen(ns) : 0) +
	    (name ? strlen(name) : 0);
	char *url = ns && name ? malloc(len) : NULL;
	if (url)
		snprintf(url, len, "%s/api/v1/namespaces/%s/pods/%s/log%s",
		    base, ns, name, q);
	curl_free(ns);
	curl_free(name);
	return url;
}

static void why_add(char *why, size_t len, const char *peer, const char *what)
{
	size_t off = strlen(why);
	if (off < len)
		snprintf(why + off, len - off, "%s%s: %.200s", off ? "; " : "",
		    peer, what);
}

int api_peer_pod_log(struct api_req *req, const char *node,
    const char *container, struct api_resp *resp, char *why, size_t whylen)
{
	struct api_peer *p = req->srv->peer;
	if (why && whylen)
		why[0] = '\0';
	if (p == NULL) {
		why_add(why, whylen, "peers", "this API server has none (plain HTTP)");
		return -1;
	}
	char **urls = peer_urls(p);
	if (urls == NULL) {
		why_add(why, whylen, "peers", "no other API server has a live Lease");
		return -1;
	}
	int rc = -1;
	int64_t deadline = now_ms() + req->srv->request_timeout_ms;
	for (size_t i = 0; urls[i] && rc != 0; i++) {
		char *url = log_url(urls[i], req, container);
		struct xfer *x = url ? xfer_open(p, url, req->follow) : NULL;
		free(url);
		if (x == NULL) {
			why_add(why, whylen, urls[i], "out of memory");
			continue;
		}
		if (!xfer_wait(req->srv, x, !req->follow, deadline)) {
			why_add(why, whylen, urls[i], "no answer in time");
			xfer_free(x);
			break;
		}
		if (!x->headers_done || (x->done && x->result != CURLE_OK)) {
			why_add(why, whylen, urls[i], xfer_error(x));
			xfer_free(x);
			continue;
		}
		if (x->code == 503) {
			/* That host does not reach the node either. */
			xfer_wait(req->srv, x, true, deadline);
			json_t *st = x->json && x->buf ?
			    json_loads(x->buf, 0, NULL) :
			    NULL;
			why_add(why, whylen, urls[i],
			    api_get_str(st, "message") ?: "503");
			json_decref(st);
			xfer_free(x);
			continue;
		}
		kb_debug(req->srv->ctx, "pod log through a peer API server",
		    "pod=%s/%s node=%s peer=%s code=%ld", req->ns, req->name,
		    node, urls[i], x->code);
		resp->code = (int)x->code;
		if (x->code == 200 && req->follow) {
			struct peer_stream *ps = calloc(1, sizeof(*ps));
			if (ps == NULL) {
				xfer_free(x);
				why_add(why, whylen, urls[i], "out of memory");
				break;
			}
			ps->st.read = peer_read;
			ps->st.close = peer_close;
			ps->st.content_type = "text/plain";
			ps->srv = req->srv;
			ps->x = x;
			resp->stream = &ps->st;
			resp->content_type = "text/plain";
			rc = 0;
			continue;
		}
		if (x->json && x->buf)
			resp->json = json_loads(x->buf, 0, NULL);
		if (resp->json == NULL) {
			resp->text = x->buf ? x->buf : strdup("");
			resp->text_len = x->buf ? x->len : 0;
			resp->content_type = "text/plain";
			x->buf = NULL;
		}
		xfer_free(x);
		rc = resp->json || resp->text ? 0 : -1;
	}
	urls_free(urls);
	return rc;
}

/* --- lifecycle ------------------------------------------------------------------------ */

/* A DNS-1123 label from the host name. */
static void lease_name(const char *host, char *out, size_t len)
{
	size_t o = (size_t)snprintf(out, len, "apiserver-");
	for (const char *c = host; c && *c && o + 1 < len && o < 63; c++) {
		char ch = *c;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
			ch = '-';
		out[o++] = ch;
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

/* The first address of this host that is not loopback, else 127.0.0.1. */
static void host_address(bool v6, char *out, size_t len)
{
	struct ifaddrs *ifs = NULL, *i;
	snprintf(out, len, "%s", v6 ? "[::1]" : "127.0.0.1");
	if (getifaddrs(&ifs) != 0)
		return;
	for (i = ifs; i; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		char a[INET6_ADDRSTRLEN];
		if (i->ifa_addr->sa_family == AF_INET) {
			struct sockaddr_in *s4 = (void *)i->ifa_addr;
			if ((ntohl(s4->sin_addr.s_addr) >> 24) == 127)
				continue;
			inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
			snprintf(out, len, "%s", a);
			break;
		}
	}
	freeifaddrs(ifs);
}

void api_peer_url(const char *listen, const char *advertise, int port,
    char *out, size_t len)
{
	char host[300];
	const char *src = advertise && *advertise ? advertise : listen;
	snprintf(host, sizeof(host), "%s", src ? src : "127.0.0.1");
	int p = port;
	char *colon = strrchr(host, ':');
	bool bracketed = host[0] == '[';
	if (colon && (!bracketed || colon > strchr(host, ']'))) {
		if (advertise && *advertise && atoi(colon + 1) > 0)
			p = atoi(colon + 1);
		*colon = '\0';
	}
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]") || !host[0])
		host_address(false, host, sizeof(host));
	snprintf(out, len, "https://%s:%d", host, p);
}

static void peer_free(struct api_peer *p)
{
	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	OPENSSL_cleanse(p->token, sizeof(p->token));
	free(p->ca_pem);
	free(p);
	curl_global_cleanup();
}

int api_peer_start(struct api_server *s, const char *dir, const char *ca_pem,
    const char *url, char *err, size_t errlen)
{
	struct api_peer *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->ca_pem = strdup(ca_pem)) == NULL) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (make_token(dir, p->token, sizeof(p->token), err, errlen)) {
		free(p->ca_pem);
		free(p);
		return -1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	p->s = s;
	lease_name(kb_host_name(s->ctx), p->name, sizeof(p->name));
	unsigned char r[4] = { 0 };
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memcpy(r, &p, sizeof(r) < sizeof(p) ? sizeof(r) : sizeof(p));
	snprintf(p->holder, sizeof(p->holder), "%s_%02x%02x%02x%02x", p->name,
	    r[0], r[1], r[2], r[3]);
	snprintf(p->url, sizeof(p->url), "%s", url);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	s->peer = p;
	if (pthread_create(&p->thr, NULL, lease_main, p) != 0) {
		s->peer = NULL;
		peer_free(p);
		snprintf(err, errlen, "cannot start the apiserver Lease thread");
		return -1;
	}
	p->running = true;
	kb_info(s->ctx, "peer API servers reach this one",
	    "url=%s lease=kube-system/%s", p->url, p->name);
	return 0;
}

void api_peer_stop(struct api_server *s)
{
	struct api_peer *p = s->peer;
	if (p == NULL || !p->running)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thr, NULL);
	p->running = false;
}

void api_peer_free(struct api_server *s)
{
	api_peer_stop(s);
	peer_free(s->peer);
	s->peer = NULL;
}
