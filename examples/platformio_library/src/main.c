/* Softmax of one row with the kernel generated from platformio.ini; prints the int16 outputs. */
#include <stdio.h>

#include "lutcodegen_config.h"

int main(void)
{
    static const int8_t logits[4] = {0, 16, 32, 48};
    lutcodegen_output_t probabilities[4];
    int32_t status = LUTCODEGEN_SOFTMAX(logits, 1, 4, probabilities);
    int i;

    printf("%s\nstatus %ld:", LUTCODEGEN_COMMAND, (long)status);
    for (i = 0; i < 4; ++i) {
        printf(" %d", probabilities[i]);
    }
    printf("\n");
    return status != 0;
}
