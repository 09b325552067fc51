/* Fuzzes the config.json parser and the runnable-model check. */
#include <stdint.h>

#include "uquant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uq_model_config c;
    if (uq_config_parse((const char *)data, size, "fuzz", &c) == UQ_OK) (void)uq_config_check_runnable(&c);
    return 0;
}
