import GenNN
import GenData
