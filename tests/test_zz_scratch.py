import io, zipfile
from tests.support.route_requests import list_resources

def test_scratch(plain_orthanc, cached_orthanc):
    r = list_resources(plain_orthanc)
    uri = "/studies/%s/media" % r.ids["studies"][0]
    a = plain_orthanc.request("GET", uri); b = plain_orthanc.request("GET", uri)
    c = cached_orthanc.request("GET", uri)
    za, zb, zc = (zipfile.ZipFile(io.BytesIO(x.body)) for x in (a, b, c))
    print(za.namelist(), zc.namelist())
    for n in za.namelist():
        print(n, za.read(n) == zb.read(n), za.read(n) == zc.read(n))
        if za.read(n) != zb.read(n):
            x, y = za.read(n), zb.read(n)
            diff = [i for i in range(min(len(x), len(y))) if x[i] != y[i]]
            print(len(x), len(y), diff[:20], x[diff[0]-40:diff[0]+40], y[diff[0]-40:diff[0]+40])
