/* tests/unit/api_http_util.h — a JSON write to the API server over plain
 * HTTP with a bearer token, as the tests that hold the JSON path against
 * a fast path's bytes make them (test_api_podwrite.c, test_api_evwrite.c).
 * Header-only; include after jansson, curl, harness.h and auth.h.
 */
#ifndef KUBUS_TESTS_API_HTTP_UTIL_H
#define KUBUS_TESTS_API_HTTP_UTIL_H

#include <stdio.h>
#include <time.h>

static inline size_t http_collect(char *p, size_t size, size_t n, void *data)
{
	json_t **out = data;
	json_error_t err;
	json_decref(*out);
	*out = json_loadb(p, size * n, 0, &err);
	return size * n;
}

/* `method` of body (Content-Type ctype) to url as the token's user: the
 * code, the answer in *out (NULL when it is not one JSON value). */
static inline long http_json(CURL *c, const char *method, const char *url, const char *token,
    const char *ctype, const char *body, json_t **out)
{
	char auth[200], ct[100];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
	snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
	struct curl_slist *hs = curl_slist_append(NULL, auth);
	hs = curl_slist_append(hs, ct);
	*out = NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	long code = 0;
	/* The auth service reads the token file once a second: a 401 first
	 * changed nothing. */
	for (int i = 0; i < 50 && (code == 0 || code == 401); i++) {
		struct timespec ts = { 0, 100 * 1000000 };
		if (i)
			nanosleep(&ts, NULL);
		code = 0;
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	}
	curl_slist_free_all(hs);
	return code;
}

/* An API server on a free loopback port serving plain HTTP, and a
 * masters' token for it: the host (NULL, said on stderr, when it did not
 * start), its port in *port, the token in token. */
static inline struct kbt_host *http_host(int *port, char token[128])
{
	char err[1024] = "", yaml[256], path[4200];
	*port = kbt_free_port();
	snprintf(yaml, sizeof yaml, "plain_http: true, listen: \"127.0.0.1:%d\"", *port);
	struct kbt_host *h = kbt_api_host_start(yaml, err, sizeof err);
	if (h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return NULL;
	}
	snprintf(path, sizeof path, "%s/tokens.csv", kbt_host_data_dir(h));
	if (kb_tokens_create(path, "admin2", "admin2", "system:masters", token, 128, err,
		sizeof err) != 0) {
		fprintf(stderr, "token: %s\n", err);
		kbt_host_stop(h);
		return NULL;
	}
	return h;
}

#endif
