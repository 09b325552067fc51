/* uquant: the command-line tool. Dispatches to one function per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const uq_command commands[] = {
    {"quantize", "quantize a model folder to 1-8 bits (MLX-compatible output)", cmd_quantize, cmd_quantize_help},
    {"info", "show a model's architecture, tensors, quantization and sizes", cmd_info, cmd_info_help},
    {"run", "generate text with a model (float or quantized)", cmd_run, cmd_run_help},
    {"eval", "perplexity, and KL / top-1 / cosine against a reference model", cmd_eval, cmd_eval_help},
    {"compare", "every available backend: speed, memory, KL / top-1 of a quantization", cmd_compare, cmd_compare_help},
    {"memory", "RAM / GPU memory, and a model's footprint float vs quantized", cmd_memory, cmd_memory_help},
};
static const size_t n_commands = sizeof commands / sizeof *commands;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: uquant COMMAND [OPTIONS] [ARGS]\n"
            "\n"
            "Quantize large language models to 1-8 bits and run them quantized.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < n_commands; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Options:\n"
            "  -h, --help     show this help (or 'uquant COMMAND --help')\n"
            "  -V, --version  print the version\n"
            "\n"
            "Exit status: 0 success, 1 bad input or failure, 2 usage error.\n");
}

static const uq_command *find(const char *name)
{
    for (size_t i = 0; i < n_commands; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return UQ_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        usage(stdout);
        return UQ_EXIT_OK;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
        printf("uquant %s\n", uq_version());
        return UQ_EXIT_OK;
    }
    if (strcmp(a, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return UQ_EXIT_OK;
        }
        const uq_command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "uquant: unknown command '%s'\n", argv[2]);
            return UQ_EXIT_USAGE;
        }
        c->help(stdout);
        return UQ_EXIT_OK;
    }
    const uq_command *c = find(a);
    if (!c) {
        fprintf(stderr, "uquant: unknown command '%s'\nTry 'uquant --help'.\n", a);
        return UQ_EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
