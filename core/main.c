/* core/main.c — the `kubus` command line. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kubus/kubeconfig.h>
#include <kubus/kubus.h>

#include "auth.h"
#include "host.h"
#include "join.h"
#include "log.h"
#include "sanitize.h"
#ifdef KUBUS_HAVE_IMAGE
#include "image_cli.h"
#endif

static const char usage_main[] =
    "usage: kubus COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run -c FILE [--data-dir DIR] [--set INSTANCE.KEY=VALUE]... [--log-level L]\n"
    "                      run a host with the plugins named in FILE\n"
    "  plugins [--path DIR]  list the plugins found, with kind, version and ABI\n"
    "  token create|list|revoke   manage the token file\n"
    "  kubeconfig --user USER      print a kubeconfig for USER\n"
    "  join HOST:PORT[,…] --token T --ca-hash H | join token create|list|revoke\n"
    "                      join a worker to a control plane; bootstrap tokens\n"
    "  image import|ls|rm|build|export   the local OCI image store\n"
    "  version             print the version\n"
    "\n"
    "`kubus COMMAND --help` tells more.\n";

static const char usage_run[] =
    "usage: kubus run -c FILE [options]\n"
    "  -c, --config FILE       the host's YAML config\n"
    "  --data-dir DIR          overrides host.data_dir\n"
    "  --set KEY.PATH=VALUE    set a config value: INSTANCE.KEY sets KEY in the\n"
    "                          config of the plugin instance INSTANCE; host.KEY,\n"
    "                          bus.KEY and auth.KEY reach the core's own keys\n"
    "  --plugin-path DIRS      ':'-separated plugin directories\n"
    "  --log-level LEVEL       error, warn, info (default), debug, trace\n";

static const char usage_plugins[] =
    "usage: kubus plugins [--path DIRS]\n"
    "  Lists every kubus-*.so on the plugin path with its kind, version and ABI.\n";

static const char usage_kubeconfig[] =
    "usage: kubus kubeconfig --user USER [--groups G1,G2] [--data-dir D] [--server URL]\n"
    "  Prints a kubeconfig for USER: its token from DATA_DIR/tokens.csv (made\n"
    "  when USER has none, in --groups) and the cluster CA the API server made in\n"
    "  DATA_DIR/apiserver/ca.crt. --server defaults to https://127.0.0.1:6443.\n";

static const char usage_token[] =
    "usage: kubus token create --user USER [--uid UID] [--groups G1,G2] [--file F | --data-dir D]\n"
    "       kubus token list [--file F | --data-dir D]\n"
    "       kubus token revoke TOKEN|USER [--file F | --data-dir D]\n"
    "  The token file (default DATA_DIR/tokens.csv, mode 0600) has the shape of\n"
    "  kube-apiserver's: token,user,uid,\"group1,group2\".\n";

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

static int die(const char *fmt, const char *a)
{
	fprintf(stderr, "kubus: ");
	fprintf(stderr, fmt, a);
	fputc('\n', stderr);
	return 2;
}

/* kubus run / kubus child */
static int cmd_run(int argc, char **argv, bool child)
{
	static const struct option opts[] = {
		{ "config", required_argument, 0, 'c' },
		{ "data-dir", required_argument, 0, 'd' },
		{ "set", required_argument, 0, 's' },
		{ "plugin-path", required_argument, 0, 'p' },
		{ "log-level", required_argument, 0, 'l' },
		{ "instance", required_argument, 0, 'i' },
		{ "join", required_argument, 0, 'j' },
		{ 0, 0, 0, 0 },
	};
	if (wants_help(argc, argv)) {
		fputs(usage_run, stdout);
		return 0;
	}
	struct kb_host_opts o = { 0 };
	const char **sets = calloc((size_t)argc + 2, sizeof(char *));
	size_t nsets = 0;
	const char *log_level = NULL;
	char *log_set = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config_file = optarg; break;
		case 'd': o.data_dir = optarg; break;
		case 's': sets[nsets++] = optarg; break;
		case 'p': o.plugin_path = optarg; break;
		case 'i': o.only_instance = optarg; break;
		case 'j': o.join_url = optarg; break;
		case 'l':
			if ((kb_log_level = kb_log_level_parse(optarg)) < 0) {
				free(sets);
				return die("--log-level %s: expected error, warn, info, debug or trace", optarg);
			}
			log_level = optarg;
			break;
		default:
			free(sets);
			fputs(usage_run, stderr);
			return 2;
		}
	}
	if (o.config_file == NULL) {
		free(sets);
		fputs(usage_run, stderr);
		return 2;
	}
	/* The command line wins over the config file's host.log_level: pass
	 * it on as the last --set, which children inherit too. */
	if (log_level) {
		if (asprintf(&log_set, "host.log_level=%s", log_level) < 0) {
			free(sets);
			return die("%s", "out of memory");
		}
		sets[nsets++] = log_set;
	}
	o.sets = sets;
	o.argv0 = argv[0];
	if (child)
		o.join_token = getenv("KUBUS_JOIN_TOKEN");

	/* Signals are taken by sigwait below: block them before any thread
	 * starts, so every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char err[1024];
	struct kb_host *h = kb_host_new(&o, err, sizeof(err));
	if (h == NULL) {
		free(sets);
		free(log_set);
		fprintf(stderr, "kubus: %s\n", err);
		return 1;
	}
	if (kb_host_start(h, err, sizeof(err)) != 0) {
		fprintf(stderr, "kubus: %s\n", err);
		kb_host_free(h);
		free(sets);
		free(log_set);
		return 1;
	}
	kb_clog(KB_LOG_INFO, "host running", "name=%s data_dir=%s plugins=%zu",
	    h->name, h->data_dir, h->ninsts);
	int sig = 0;
	sigwait(&set, &sig);
	kb_clog(KB_LOG_INFO, "stopping", "signal=%s", strsignal(sig));
	kb_host_stop(h);
	kb_host_free(h);
	free(sets);
	free(log_set);
	return 0;
}

static int cmd_plugins(int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		fputs(usage_plugins, stdout);
		return 0;
	}
	const char *path = getenv("KUBUS_PLUGIN_PATH");
	char def[3 * PATH_MAX];
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--path") && i + 1 < argc)
			path = argv[++i];
		else
			return die("plugins: unknown argument %s", argv[i]);
	}
	if (path == NULL) {
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(def, sizeof(def), "%s/plugins:%s/../lib/kubus/plugins", exe, exe);
		path = def;
	}
	if (kb_loader_list(path, stdout) == 0)
		fprintf(stderr, "kubus: no plugins on %s\n", path);
	return 0;
}

static int cmd_token(int argc, char **argv)
{
	if (argc < 2 || wants_help(argc, argv)) {
		fputs(usage_token, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1], *user = NULL, *uid = NULL, *groups = NULL;
	const char *file = NULL, *data_dir = "/var/lib/kubus", *what = NULL;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--user") && v) user = v, i++;
		else if (!strcmp(a, "--uid") && v) uid = v, i++;
		else if (!strcmp(a, "--groups") && v) groups = v, i++;
		else if (!strcmp(a, "--file") && v) file = v, i++;
		else if (!strcmp(a, "--data-dir") && v) data_dir = v, i++;
		else if (a[0] != '-' && what == NULL) what = a;
		else return die("token: unknown argument %s", a);
	}
	char path[PATH_MAX], err[512];
	if (file)
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/tokens.csv", data_dir);
	int rc;
	if (!strcmp(sub, "create")) {
		char token[128];
		if (user == NULL)
			return die("%s", "token create: --user is required");
		rc = kb_tokens_create(path, user, uid ? uid : user, groups, token,
		    sizeof(token), err, sizeof(err));
		if (rc == 0)
			printf("%s\n", token);
	} else if (!strcmp(sub, "list")) {
		rc = kb_tokens_list(path, stdout, err, sizeof(err));
	} else if (!strcmp(sub, "revoke")) {
		if (what == NULL)
			return die("%s", "token revoke: name a token or a user");
		rc = kb_tokens_revoke(path, what, err, sizeof(err));
	} else {
		return die("token: unknown subcommand %s (create, list, revoke)", sub);
	}
	if (rc) {
		fprintf(stderr, "kubus: token %s: %s\n", sub, err);
		return 1;
	}
	return 0;
}

static int cmd_kubeconfig(int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		fputs(usage_kubeconfig, stdout);
		return 0;
	}
	const char *user = NULL, *groups = NULL, *data_dir = "/var/lib/kubus";
	const char *server = "https://127.0.0.1:6443";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--user") && v) user = v, i++;
		else if (!strcmp(a, "--groups") && v) groups = v, i++;
		else if (!strcmp(a, "--data-dir") && v) data_dir = v, i++;
		else if (!strcmp(a, "--server") && v) server = v, i++;
		else return die("kubeconfig: unknown argument %s", a);
	}
	if (user == NULL)
		return die("%s", "kubeconfig: --user is required");
	char path[PATH_MAX], token[256], err[512];
	/* The CA first: no token is made for a kubeconfig that cannot be. */
	snprintf(path, sizeof(path), "%s/apiserver/ca.crt", data_dir);
	FILE *f = fopen(path, "r");
	char ca[65536];
	size_t n = f ? fread(ca, 1, sizeof(ca) - 1, f) : 0;
	if (f)
		fclose(f);
	if (n == 0) {
		fprintf(stderr, "kubus: kubeconfig: no CA at %s: has the API server run with this data dir?\n", path);
		return 1;
	}
	ca[n] = '\0';
	snprintf(path, sizeof(path), "%s/tokens.csv", data_dir);
	int rc = kb_tokens_find_user(path, user, token, sizeof(token), err, sizeof(err));
	if (rc == KB_ENOTFOUND || rc == KB_ENOENT)
		rc = kb_tokens_create(path, user, user, groups, token, sizeof(token), err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kubus: kubeconfig: %s\n", err);
		return 1;
	}
	char *text = kb_kubeconfig_text(server, ca, user, token);
	explicit_bzero(token, sizeof(token));
	if (text == NULL)
		return die("%s", "out of memory");
	fputs(text, stdout);
	explicit_bzero(text, strlen(text));
	free(text);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("kubus %s (plugin ABI %d.%d)\n", KUBUS_VERSION, KB_ABI_MAJOR, KB_ABI_MINOR);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1, false);
	if (!strcmp(cmd, "child"))
		return cmd_run(argc - 1, argv + 1, true);
	if (!strcmp(cmd, "plugins"))
		return cmd_plugins(argc - 1, argv + 1);
	if (!strcmp(cmd, "join"))
		return kb_join_cli(argc - 1, argv + 1);
	if (!strcmp(cmd, "token"))
		return cmd_token(argc - 1, argv + 1);
#ifdef KUBUS_HAVE_IMAGE
	if (!strcmp(cmd, "image"))
		return kb_image_cli(argc - 1, argv + 1);
#endif
	if (!strcmp(cmd, "kubeconfig"))
		return cmd_kubeconfig(argc - 1, argv + 1);
	fprintf(stderr, "kubus: unknown command `%s`\n\n%s", cmd, usage_main);
	return 2;
}
