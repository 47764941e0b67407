module airflowtask/pause

go 1.22
