/* tests/fuzz/fuzz_conf.c — libFuzzer target for the configuration
 * reader (sdk/src/conf.c): the YAML config file every host starts from,
 * `--set PATH=VALUE`, a plugin's option table and the scalar
 * conversions.
 *
 * Input: YAML text, then optionally a NUL and "PATH=VALUE" for
 * kb_conf_set. A config the parser refuses must say where and why
 * ("FILE:LINE:COL: what"); one it takes is walked whole. Every scalar
 * goes through each conversion; what kb_conf_to_int and
 * kb_conf_to_duration_ms accept, printed again, gives the same value.
 * A --set that succeeds leaves that scalar at that path; one that fails
 * says why. The option table fills or fails with a message, and frees
 * what it filled.
 * Seeds: tests/fuzz/conf/.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/conf.h>
#include <kubus/err.h>

#include "fuzz.h"

struct opts_out {
	char *path;
	int64_t n, size, ms;
	bool flag;
	double ratio;
	char **list;
	const kb_conf *node;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR("path", struct opts_out, path, "store", "a string"),
	KB_OPT_INT("n", struct opts_out, n, "1", 0, 1000, "an int in a range"),
	KB_OPT_SIZE("size", struct opts_out, size, "1Mi", "a size"),
	KB_OPT_DURATION("every", struct opts_out, ms, "1s", "a duration"),
	KB_OPT_BOOL("sync", struct opts_out, flag, "true", "a bool"),
	KB_OPT_DOUBLE("ratio", struct opts_out, ratio, "0.5", "a double"),
	KB_OPT_STRLIST("names", struct opts_out, list, "a list"),
	KB_OPT_NODE("extra", struct opts_out, node, "any subtree"),
	KB_OPT_END,
};

/* An error message as the parser writes them: "FILE:" first. */
static bool says_where(const char *err)
{
	return strncmp(err, "fuzz.yaml:", 10) == 0 && err[10] != '\0';
}

static void conversions(const char *s)
{
	bool b;
	int64_t v, again;
	double d;
	char buf[64];

	(void)kb_conf_to_bool(s, &b);
	(void)kb_conf_to_double(s, &d);
	(void)kb_conf_to_size(s, &v);
	if (kb_conf_to_int(s, &v) == KB_OK) {
		snprintf(buf, sizeof(buf), "%" PRId64, v);
		CHECK(kb_conf_to_int(buf, &again) == KB_OK && again == v);
	}
	if (kb_conf_to_duration_ms(s, &v) == KB_OK && v >= 0) {
		snprintf(buf, sizeof(buf), "%" PRId64 "ms", v);
		CHECK(kb_conf_to_duration_ms(buf, &again) == KB_OK &&
		    again == v);
	}
}

/* Every node: its accessors, and its scalars' conversions. */
static void walk(const kb_conf *n)
{
	int t = kb_conf_type(n);

	CHECK(t >= KB_CONF_NULL && t <= KB_CONF_SEQ);
	CHECK(kb_conf_where(n) != NULL);
	(void)kb_conf_file(n);
	(void)kb_conf_line(n);
	(void)kb_conf_col(n);
	if (t == KB_CONF_SCALAR) {
		CHECK(kb_conf_str(n) != NULL);
		conversions(kb_conf_str(n));
	}
	for (size_t i = 0; i < kb_conf_len(n); i++) {
		const kb_conf *c = kb_conf_at(n, i);

		CHECK(c != NULL);
		if (t == KB_CONF_MAP)
			CHECK(kb_conf_key_at(n, i) != NULL);
		walk(c);
	}
}

static void set_one(kb_conf *root, const char *arg)
{
	char err[512] = "";
	const char *eq = strchr(arg, '=');

	if (eq == NULL)
		return;
	char *path = exact_copy(arg, (size_t)(eq - arg) + 1);
	path[eq - arg] = '\0';
	if (kb_conf_set(root, path, eq + 1, err, sizeof(err)) == KB_OK) {
		const kb_conf *n = kb_conf_path(root, path);

		CHECK(n != NULL && kb_conf_type(n) == KB_CONF_SCALAR);
		CHECK(strcmp(kb_conf_str(n), eq + 1) == 0);
	} else {
		CHECK(err[0] != '\0');
	}
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t ylen = nul ? (size_t)(nul - data) : size;
	char *yaml = exact_copy(data, ylen);
	char err[512] = "";
	kb_conf *root = kb_conf_parse_yaml(yaml, ylen, "fuzz.yaml", err,
	    sizeof(err));

	free(yaml);
	if (root == NULL) {
		CHECK(says_where(err));
		return 0;
	}
	walk(root);
	if (nul) {
		size_t alen = size - ylen - 1;
		char *arg = malloc(alen + 1);

		CHECK(arg != NULL);
		memcpy(arg, nul + 1, alen);
		arg[alen] = '\0';
		set_one(root, arg);
		free(arg);
		walk(root);
	}
	struct opts_out out;
	char oerr[512] = "";

	if (kb_conf_opts(root, opts, &out, "fuzz", oerr, sizeof(oerr)) ==
	    KB_OK)
		kb_conf_opts_free(opts, &out);
	else
		CHECK(oerr[0] != '\0');
	kb_conf_free(root);
	return 0;
}
