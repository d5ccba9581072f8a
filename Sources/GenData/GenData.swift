import GenTensor
