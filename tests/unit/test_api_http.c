/* tests/unit/test_api_http.c — the HTTP front (plugins/apiserver/http.c):
 *
 *   - the token a connection keeps: on one keep-alive connection, requests
 *     with other tokens, a bad token and none are each answered for who
 *     they are, and a revoked token stops working within the
 *     authentication cache's lifetime (10 s) on that connection too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth.h"
#include "harness.h"
#include "http.h"

static size_t sink(char *p, size_t size, size_t n, void *data)
{
	(void)p;
	(void)data;
	return size * n;
}

/* GET url with this bearer token (NULL: none) on c; the HTTP code, and
 * in *fresh whether it took a new connection. */
static long get_as(CURL *c, const char *url, const char *token, long *fresh)
{
	char hdr[600];
	struct curl_slist *hs = NULL;
	if (token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		hs = curl_slist_append(hs, hdr);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	long code = 0;
	*fresh = -1;
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, fresh);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hs);
	return code;
}

static void test_connection_token(void **state)
{
	(void)state;
	char err[1024] = "", yaml[1024], url[256], path[4200];
	int port = kbt_free_port();
	snprintf(yaml, sizeof(yaml), "plain_http: true, listen: \"127.0.0.1:%d\"",
	    port);
	struct kbt_host *h = kbt_api_host_start(yaml, err, sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	snprintf(path, sizeof(path), "%s/tokens.csv", kbt_host_data_dir(h));
	char admin[128], nobody[128];
	assert_int_equal(kb_tokens_create(path, "admin2", "admin2",
			     "system:masters", admin, sizeof(admin), err,
			     sizeof(err)),
	    0);
	assert_int_equal(kb_tokens_create(path, "nobody", "nobody", "",
			     nobody, sizeof(nobody), err, sizeof(err)),
	    0);
	snprintf(url, sizeof(url),
	    "http://127.0.0.1:%d/api/v1/namespaces/default/configmaps", port);
	CURL *c = curl_easy_init();
	assert_non_null(c);
	long fresh, code = 0;
	/* The auth service looks at the token file once a second. */
	for (int i = 0; i < 40 && code != 200; i++) {
		code = get_as(c, url, admin, &fresh);
		if (code != 200)
			usleep(100 * 1000);
	}
	assert_int_equal(code, 200);
	static const struct {
		int who; /* 0 admin, 1 nobody, 2 a made-up token, 3 none */
		long code;
	} steps[] = { { 1, 403 }, { 0, 200 }, { 2, 401 }, { 0, 200 },
		{ 3, 401 }, { 0, 200 }, { 1, 403 }, { 1, 403 }, { 0, 200 } };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const char *tok = steps[i].who == 0 ? admin :
		    steps[i].who == 1		    ? nobody :
		    steps[i].who == 2		    ? "made-up-token-0123" :
						      NULL;
		long code = get_as(c, url, tok, &fresh);
		if (code != steps[i].code)
			fail_msg("step %zu: %ld, want %ld", i, code,
			    steps[i].code);
		assert_int_equal(fresh, 0); /* the same connection */
	}
	/* Revoked: refused within the cache's 10 s, same connection. */
	assert_int_equal(kb_tokens_revoke(path, admin, err, sizeof(err)), 0);
	int waited_ms = 0;
	for (; waited_ms < 13000; waited_ms += 250) {
		if ((code = get_as(c, url, admin, &fresh)) == 401)
			break;
		assert_int_equal(code, 200);
		assert_int_equal(fresh, 0);
		usleep(250 * 1000);
	}
	if (code != 401)
		fail_msg("a revoked token still works after %d ms", waited_ms);
	assert_int_equal(get_as(c, url, nobody, &fresh), 403);
	curl_easy_cleanup(c);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connection_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
