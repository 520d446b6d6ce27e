/* plugins/runtime-fake/behave.c — how each image behaves: the config's
 * `images` map first, then the built-in test images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

struct bcfg {
	int64_t exit_code;
	char *run_for;
	bool ignore_term;
	bool missing;
	char *log;
};

static const struct kb_opt bopts[] = {
	KB_OPT_INT("exit_code", struct bcfg, exit_code, "0", 0, 255,
	    "exit code when it exits on its own"),
	KB_OPT_STR("run_for", struct bcfg, run_for, NULL,
	    "exit after this long (absent: run until stopped)"),
	KB_OPT_BOOL("ignore_term", struct bcfg, ignore_term, "false",
	    "ignore SIGTERM: stop waits for its timeout"),
	KB_OPT_BOOL("missing", struct bcfg, missing, "false",
	    "the image is not in the store"),
	KB_OPT_STR("log", struct bcfg, log, NULL,
	    "text written to the container log at start"),
	KB_OPT_END,
};

/* Built in, so that tests need no config: "fail" exits 1 at once,
 * "complete" exits 0, "sleep-on-term" ignores SIGTERM, "missing" is not
 * in the store. */
static const struct {
	const char *image;
	int exit_code;
	int64_t run_ms;
	bool ignore_term, missing;
} builtin[] = {
	{ "fail", 1, 0, false, false },
	{ "complete", 0, 0, false, false },
	{ "sleep-on-term", 0, -1, true, false },
	{ "missing", 0, -1, false, true },
};

static int add(struct fake *f, const char *image, const struct bcfg *c,
    int64_t run_ms)
{
	struct fake_behave *v =
	    realloc(f->behave, (f->nbehave + 1) * sizeof(*v));
	if (v == NULL)
		return KB_ENOMEM;
	f->behave = v;
	struct fake_behave *b = &v[f->nbehave];
	memset(b, 0, sizeof(*b));
	b->image = strdup(image);
	b->log = strdup(c->log ? c->log : "");
	if (b->image == NULL || b->log == NULL) {
		free(b->image);
		free(b->log);
		return KB_ENOMEM;
	}
	b->exit_code = c->exit_code;
	b->run_ms = run_ms;
	b->ignore_term = c->ignore_term;
	b->missing = c->missing;
	f->nbehave++;
	return 0;
}

int fake_behave_load(struct fake *f, const kb_conf *images)
{
	char err[512];
	int rc = 0;
	if (images && kb_conf_type(images) != KB_CONF_MAP &&
	    kb_conf_type(images) != KB_CONF_NULL)
		return kb_fail(f->ctx, KB_EINVAL,
		    "%s:%d:%d: `images` in runtime-fake config must be a map of image name to behaviour",
		    kb_conf_file(images), kb_conf_line(images),
		    kb_conf_col(images));
	for (size_t i = 0; rc == 0 && i < kb_conf_len(images); i++) {
		struct bcfg c = { 0 };
		const kb_conf *n = kb_conf_at(images, i);
		if (kb_conf_opts(n, bopts, &c, "runtime-fake", err,
			sizeof(err)) != 0)
			return kb_fail(f->ctx, KB_EINVAL, "%s", err);
		int64_t run_ms = -1;
		if (c.run_for &&
		    kb_conf_to_duration_ms(c.run_for, &run_ms) != 0)
			rc = kb_fail(f->ctx, KB_EINVAL,
			    "%s:%d:%d: `run_for` must be a duration (like 0s, 250ms or 1m), got `%s`",
			    kb_conf_file(n), kb_conf_line(n), kb_conf_col(n),
			    c.run_for);
		if (rc == 0 &&
		    add(f, kb_conf_key_at(images, i), &c, run_ms) != 0)
			rc = kb_fail(f->ctx, KB_ENOMEM, "out of memory");
		kb_conf_opts_free(bopts, &c);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(builtin) / sizeof(builtin[0]);
	     i++) {
		struct bcfg c = { .exit_code = builtin[i].exit_code,
			.ignore_term = builtin[i].ignore_term,
			.missing = builtin[i].missing };
		if (add(f, builtin[i].image, &c, builtin[i].run_ms) != 0)
			rc = kb_fail(f->ctx, KB_ENOMEM, "out of memory");
	}
	f->dflt.run_ms = -1;
	f->dflt.log = "";
	return rc;
}

/* "registry:5000/x/fail:v1@sha256:…" → "fail". */
static void base_name(const char *image, char *out, size_t len)
{
	const char *s = strrchr(image, '/');
	s = s ? s + 1 : image;
	size_t n = strcspn(s, ":@");
	if (n >= len)
		n = len - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

const struct fake_behave *fake_behave_of(const struct fake *f,
    const char *image)
{
	char name[256];
	base_name(image ? image : "", name, sizeof(name));
	for (size_t i = 0; i < f->nbehave; i++)
		if (!strcmp(f->behave[i].image, name) ||
		    !strcmp(f->behave[i].image, image))
			return &f->behave[i];
	return &f->dflt;
}

void fake_behave_free(struct fake *f)
{
	for (size_t i = 0; i < f->nbehave; i++) {
		free(f->behave[i].image);
		free(f->behave[i].log);
	}
	free(f->behave);
	f->behave = NULL;
	f->nbehave = 0;
}
