/* image/image_cli.h — `kubus image …`, for core/main.c. */
#ifndef KUBUS_IMAGE_CLI_H
#define KUBUS_IMAGE_CLI_H

/* argv[0] is "image", argv[1] the subcommand. The exit status. */
int kb_image_cli(int argc, char **argv);

#endif
